"""Run the prevention service: `python -m services.prevention` (settings: README, Settings)."""

from services.prevention.app import main

main()

"""Run the chronic-disease service: `python -m services.chronic` (settings: README, Settings)."""

from services.chronic.app import main

main()

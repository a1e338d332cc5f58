"""Run the prevention service: `python -m services.prevention` (settings: docs/settings.md)."""

from services.prevention.app import main

main()

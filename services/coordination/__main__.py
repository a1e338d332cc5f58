"""Run the coordination service: `python -m services.coordination` (settings: docs/settings.md)."""

from services.coordination.app import main

main()

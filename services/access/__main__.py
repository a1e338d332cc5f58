"""Run the access-to-care service: `python -m services.access` (settings: docs/settings.md)."""

from services.access.app import main

main()

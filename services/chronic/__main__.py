"""Run the chronic-disease service: `python -m services.chronic` (settings: docs/settings.md)."""

from services.chronic.app import main

main()

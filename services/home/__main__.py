"""Run the home-support service: `python -m services.home` (settings: docs/settings.md)."""

from services.home.app import main

main()

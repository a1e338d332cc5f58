"""Run the partner gateway: `python -m services.gateway` (settings: docs/settings.md)."""

from services.gateway.app import main

main()

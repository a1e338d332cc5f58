"""Run the access-to-care service: `python -m services.access` (settings: README, Settings)."""

from services.access.app import main

main()

"""Run the partner gateway: `python -m services.gateway` (settings: README, Settings)."""

from services.gateway.app import main

main()

"""Run the home-support service: `python -m services.home` (settings: README, Settings)."""

from services.home.app import main

main()

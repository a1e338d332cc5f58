"""Run the evaluation service: `python -m services.evaluation` (settings: docs/settings.md)."""

from services.evaluation.app import main

main()

"""Example partners: how a start-up plugs into the platform (docs/partners.md)."""

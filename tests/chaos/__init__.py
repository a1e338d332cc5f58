"""The fault suite (make chaos): services under kills, pauses, broker crashes and poison."""

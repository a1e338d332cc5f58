"""Coordination service: a care coordinator's view of a person across the four axes."""

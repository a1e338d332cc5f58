"""Evaluation service: the programme's indicators per experiment, territory and month."""

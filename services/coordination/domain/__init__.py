"""Coordination's pure rules: timelines and open problems (no framework, no generated code)."""

"""Chronic-disease service: remote monitoring readings checked against each patient's care plan."""

"""Home-support service: connected-home sensor events turned into incidents and a home status."""

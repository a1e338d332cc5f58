"""A partner consumer with kafka-python alone, no SDK."""

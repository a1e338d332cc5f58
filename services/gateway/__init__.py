"""Partner gateway: consent-filtered feeds for partners, and their inbound events checked."""

"""e-Meuse santé event platform: the shared contract (generated) and the runtime written once."""

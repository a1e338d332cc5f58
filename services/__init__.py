"""The axis services and the partner gateway: each one deployable on the processing kernel."""

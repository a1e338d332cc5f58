"""The four axis services; each is one deployable faust worker serving gRPC."""

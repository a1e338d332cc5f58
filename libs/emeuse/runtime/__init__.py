"""The service runtime, written once: settings, logs, metrics, envelope, codec, bus, gRPC server."""

"""Pure home-support rules; nothing here imports the kernel, Kafka, grpc or generated code."""

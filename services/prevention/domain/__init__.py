"""Pure prevention rules; nothing here imports the kernel, Kafka, grpc or generated code."""

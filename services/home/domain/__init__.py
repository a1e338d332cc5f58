"""Pure home-support rules; nothing here imports faust, grpc or generated code."""

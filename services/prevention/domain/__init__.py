"""Pure prevention rules; nothing here imports faust, grpc or generated code."""

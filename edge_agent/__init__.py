"""The on-device daemon: gRPC server, request pipeline, local model, personal store."""

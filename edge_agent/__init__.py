"""The on-device daemon: front doors (gRPC, HTTP), request pipeline, local model, personal store."""

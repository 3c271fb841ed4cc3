"""Generated gRPC/protobuf code of the edgecloud wire contract."""

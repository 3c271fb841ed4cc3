"""edgecloud.v1: the wire contract, generated from the .proto files beside this file."""

"""Code shared by edge_agent, cloud_stub and orchestrator (no gRPC, no llama.cpp)."""

"""The cloud side: a gRPC CloudInference service over a llama.cpp or OpenAI-compatible backend."""

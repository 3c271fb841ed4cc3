"""On-device inference: the llama.cpp model, the decode loop, drafters, sampling."""

"""The model directory: which GGUF files the daemon may run and which one it runs."""

"""Serving a student outside this process: its adapter as GGUF, llama.cpp's server, Ollama."""

"""Personal context: the SQLite store, importers and retrieval for prompts."""

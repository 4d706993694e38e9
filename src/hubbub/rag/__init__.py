"""Retrieval over uploaded documents (RAG): parse, chunk, index (BM25, optional dense), search.

See docs/rag.md. ``RagService`` (service.py) is the entry point the app, the CLI and the
documents dialect use; ``ChatService`` only sees its ``context_for``.
"""

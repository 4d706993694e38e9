"""Documents (RAG) routes: ``/api/documents`` (API.md §6)."""

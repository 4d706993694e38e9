"""The OpenAI-compatible dialect (API.md §5): /v1/chat/completions and /v1/models."""

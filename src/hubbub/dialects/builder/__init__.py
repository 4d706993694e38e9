"""The builder dialect (API.md)."""

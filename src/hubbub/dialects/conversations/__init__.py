"""The conversations dialect (API.md)."""

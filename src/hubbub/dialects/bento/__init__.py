"""The bento dialect (API.md)."""

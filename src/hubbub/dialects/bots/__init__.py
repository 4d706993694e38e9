"""The bots dialect (API.md)."""

"""The web chat page served at ``/`` (static files, no build step; see docs/web.md)."""

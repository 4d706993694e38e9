"""hubbub: a self-hosted chat API server — one core, five HTTP dialects."""

__version__ = "0.1.0"

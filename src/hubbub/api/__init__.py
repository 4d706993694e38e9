"""Management and operations routes: keys, usage, bots, channels, documents, health and metrics.

Not dialects: each has the plain error shape the contract gives it (docs/api-decisions.md)."""

"""The five HTTP dialects. Each is thin: protocol (wire models), adapter (wire <-> core,
events -> frames, errors -> bodies) and router (parse, call the service, render)."""

"""HTTP plumbing shared by the dialects and the management API: the route class (admission, body
limit, error mapping), SSE framing, dependencies, validation errors, the edge middleware, idempotency."""

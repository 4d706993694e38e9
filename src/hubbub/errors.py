"""The one error tree.

The core raises these; each dialect has exactly one function that maps any of
them to its own body and status (``dialects/<name>/adapter.py``).

    HubbubError
    ├── InvalidRequest(details)          bad input the core itself detected
    ├── Unauthorized                     missing or unknown API key
    ├── Forbidden                        a user key asked for an admin route
    ├── NotFound(kind, ident)            conversation, chat, bot, document…
    ├── ModelNotFound(model, available)
    ├── ContextTooLong(max_length, request_length)
    ├── PayloadTooLarge(limit)
    ├── RequestTimeout(seconds)          the body did not arrive in time (slow client)
    ├── RateLimited(retry_after)
    ├── Conflict                         e.g. a bot slug that exists already
    ├── Unavailable(backend)             a backend hubbub needs (database, Redis) is down: 503
    └── ProviderError                    anything a model provider reports
        ├── UpstreamError(details)       the model failed (embedded or upstream)
        └── ChannelUnavailable           no healthy channel can serve the model
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


class HubbubError(Exception):
    """Base of every error the core raises on purpose."""

    status: int = 500
    code: str = "INTERNAL_ERROR"

    def __init__(self, message: str = "Internal error") -> None:
        super().__init__(message)
        self.message = message


@dataclass
class FieldProblem:
    """One problem with one input field (``field`` is a dotted path)."""

    field: str
    message: str
    kind: str = "value_error"
    loc: tuple[Any, ...] = ()
    input: Any = None


class InvalidRequest(HubbubError):
    status = 400
    code = "INVALID_REQUEST"

    def __init__(self, message: str = "Invalid request", details: list[FieldProblem] | None = None) -> None:
        super().__init__(message)
        self.details = details or []


class Unauthorized(HubbubError):
    status = 401
    code = "UNAUTHORIZED"

    def __init__(self, message: str = "Unauthorized") -> None:
        super().__init__(message)


class Forbidden(HubbubError):
    status = 403
    code = "FORBIDDEN"

    def __init__(self, message: str = "This route needs an admin key") -> None:
        super().__init__(message)


class NotFound(HubbubError):
    status = 404
    code = "NOT_FOUND"

    def __init__(self, kind: str, ident: str | None = None) -> None:
        super().__init__(f"{kind.capitalize()} not found" + (f": {ident}" if ident else ""))
        self.kind = kind
        self.ident = ident


class ModelNotFound(HubbubError):
    status = 404
    code = "MODEL_NOT_FOUND"

    def __init__(self, model: str, available: list[str]) -> None:
        super().__init__(f"Model '{model}' is not available")
        self.model = model
        self.available = available


class ContextTooLong(HubbubError):
    status = 400
    code = "CONTEXT_LENGTH_EXCEEDED"

    def __init__(self, max_length: int, request_length: int) -> None:
        super().__init__(
            f"This model's maximum context length is {max_length} tokens, "
            f"but the request needs {request_length} tokens"
        )
        self.max_length = max_length
        self.request_length = request_length


class PayloadTooLarge(HubbubError):
    status = 413
    code = "PAYLOAD_TOO_LARGE"

    def __init__(self, limit: int) -> None:
        super().__init__(f"Request body is larger than {limit} bytes")
        self.limit = limit


class RequestTimeout(HubbubError):
    status = 408
    code = "REQUEST_TIMEOUT"

    def __init__(self, seconds: float) -> None:
        super().__init__(f"The request body did not arrive within {seconds:g} seconds")
        self.seconds = seconds


class RateLimited(HubbubError):
    status = 429
    code = "RATE_LIMITED"

    def __init__(self, retry_after: int, message: str | None = None) -> None:
        super().__init__(message or f"Too many requests. Please wait {retry_after} seconds.")
        self.retry_after = retry_after


class Conflict(HubbubError):
    status = 409
    code = "CONFLICT"


class Unavailable(HubbubError):
    """A backend hubbub itself depends on is unreachable: a 503 to retry later, never a 500
    (and never counted against a model's channel: it is not the upstream's fault)."""

    status = 503
    code = "SERVICE_UNAVAILABLE"

    def __init__(self, backend: str, retry_after: int = 5) -> None:
        super().__init__(f"Service temporarily unavailable: the {backend} cannot be reached")
        self.backend = backend
        self.retry_after = retry_after


class ProviderError(HubbubError):
    status = 502
    code = "MODEL_ERROR"


class UpstreamError(ProviderError):
    def __init__(self, message: str = "Model error", details: str = "", retry_after: float | None = None,
                 upstream_status: int | None = None) -> None:
        super().__init__(message)
        self.details = details
        self.retry_after = retry_after
        self.upstream_status = upstream_status


class ChannelUnavailable(ProviderError):
    status = 503
    code = "CHANNEL_UNAVAILABLE"

    def __init__(self, message: str = "No available channels") -> None:
        super().__init__(message)


@dataclass
class ErrorInfo:
    """What an in-stream error event carries once the stream has started."""

    code: str
    message: str
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_exception(cls, exc: BaseException) -> "ErrorInfo":
        if isinstance(exc, HubbubError):
            return cls(exc.code, exc.message)
        return cls("INTERNAL_ERROR", "Internal error")

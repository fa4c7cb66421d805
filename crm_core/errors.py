"""Domain exceptions. The web layer maps them to HTTP answers in one place."""
from __future__ import annotations


class DomainError(Exception):
    """Base of every error a service raises on purpose."""

    status = 400
    code = "bad_request"

    def __init__(self, message: str, *, code: str | None = None, fields: dict | None = None, extra: dict | None = None):
        super().__init__(message)
        self.message = message
        if code:
            self.code = code
        self.fields = fields or {}
        self.extra = extra or {}


class ValidationFailed(DomainError):
    status = 422
    code = "validation_failed"


class NotAuthenticated(DomainError):
    status = 401
    code = "not_authenticated"


class PermissionDenied(DomainError):
    status = 403
    code = "permission_denied"


class NoEmployeeLinked(PermissionDenied):
    """The user has no employee record, so no data scope can be computed."""

    code = "no_employee_linked"


class FunctionDisabled(PermissionDenied):
    code = "function_disabled"


class NotFound(DomainError):
    status = 404
    code = "not_found"


class Conflict(DomainError):
    status = 409
    code = "conflict"


class RateLimited(DomainError):
    status = 429
    code = "rate_limited"

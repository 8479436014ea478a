from __future__ import annotations

from dataclasses import dataclass, field
from http import HTTPStatus


@dataclass(frozen=True)
class FieldError:
    """One problem with one input field. The message never repeats the rejected value."""

    field: str
    message: str
    code: str = "invalid"


class ObhutError(Exception):
    """A domain error a user can act on; the edge maps it once to RFC 9457 problem details."""

    status: HTTPStatus = HTTPStatus.BAD_REQUEST
    kind: str = "bad-request"
    title: str = "Bad request"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class NotFoundError(ObhutError):
    status = HTTPStatus.NOT_FOUND
    kind = "not-found"
    title = "Not found"


class ConflictError(ObhutError):
    status = HTTPStatus.CONFLICT
    kind = "conflict"
    title = "Conflict"


class GoneError(ObhutError):
    status = HTTPStatus.GONE
    kind = "gone"
    title = "Gone"


class AuthenticationError(ObhutError):
    status = HTTPStatus.UNAUTHORIZED
    kind = "unauthenticated"
    title = "Authentication required"


class ForbiddenError(ObhutError):
    status = HTTPStatus.FORBIDDEN
    kind = "forbidden"
    title = "Not allowed"


class TooManyRequestsError(ObhutError):
    status = HTTPStatus.TOO_MANY_REQUESTS
    kind = "too-many-requests"
    title = "Too many attempts"


class ConfigurationError(ObhutError):
    status = HTTPStatus.INTERNAL_SERVER_ERROR
    kind = "configuration"
    title = "Configuration error"


class ServiceUnavailableError(ObhutError):
    status = HTTPStatus.SERVICE_UNAVAILABLE
    kind = "unavailable"
    title = "Service unavailable"


class ValidationFailedError(ObhutError):
    status = HTTPStatus.UNPROCESSABLE_ENTITY
    kind = "validation"
    title = "Invalid input"

    def __init__(self, errors: list[FieldError]) -> None:
        names = ", ".join(sorted({e.field for e in errors}))
        super().__init__(f"{len(errors)} field(s) are invalid: {names}")
        self.errors: list[FieldError] = errors


@dataclass
class FieldErrors:
    """Collects field errors so that one pass reports all of them, not just the first."""

    errors: list[FieldError] = field(default_factory=list)

    def add(self, name: str, message: str, code: str = "invalid") -> None:
        self.errors.append(FieldError(name, message, code))

    def raise_if_any(self) -> None:
        if self.errors:
            raise ValidationFailedError(self.errors)


def invalid(field_name: str, message: str, code: str = "invalid") -> ValidationFailedError:
    """One field's problem, to raise where there is only ever one."""
    return ValidationFailedError([FieldError(field_name, message, code)])

"""The domain error hierarchy.

Every error the service can answer is one of these: a stable `code`, the HTTP
status the REST face uses for it, a message for people and, for validation
problems, `details` naming each field. The REST face turns them into the error
envelope; the GraphQL face into `userErrors` or top-level errors. Nothing else
maps errors.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar


@dataclass(frozen=True, slots=True)
class FieldProblem:
    """One problem with one input field, e.g. `config.pixel_id` is REQUIRED."""

    field: str
    code: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"field": self.field, "code": self.code, "message": self.message}


class DomainError(Exception):
    code: ClassVar[str] = "INTERNAL_ERROR"
    status: ClassVar[int] = 500
    default_message: ClassVar[str] = "An internal error occurred."
    # Whether a GraphQL mutation reports it as a `userError` (something the
    # caller can fix in the input) rather than a top-level error.
    user_fixable: ClassVar[bool] = False
    # Whole seconds after which the same request may succeed, for errors that
    # pass with time; answered as `Retry-After`.
    retry_after: int | None = None

    def __init__(
        self, message: str | None = None, details: list[FieldProblem] | None = None
    ) -> None:
        self.message = message or self.default_message
        self.details = details or []
        super().__init__(self.message)


# 400
class BadRequest(DomainError):
    code = "BAD_REQUEST"
    status = 400
    default_message = "The request is malformed."
    user_fixable = True


class InvalidJson(BadRequest):
    code = "INVALID_JSON"
    default_message = "The request body is not valid JSON."


class MissingField(BadRequest):
    code = "MISSING_FIELD"
    default_message = "A required field is missing."


class InvalidCursor(BadRequest):
    code = "INVALID_CURSOR"
    default_message = "The cursor is not one this service issued."


# 401
class Unauthorized(DomainError):
    code = "UNAUTHORIZED"
    status = 401
    default_message = "Authentication is required."


class InvalidToken(Unauthorized):
    code = "INVALID_TOKEN"
    default_message = "The token is invalid."


class ExpiredToken(Unauthorized):
    code = "EXPIRED_TOKEN"
    default_message = "The token has expired."


class InvalidCredentials(Unauthorized):
    code = "INVALID_CREDENTIALS"
    default_message = "The email or password is incorrect."
    user_fixable = True


class InvalidRefreshToken(Unauthorized):
    code = "INVALID_REFRESH_TOKEN"
    default_message = "The refresh token is invalid, spent or expired."
    user_fixable = True


class AccountLocked(Unauthorized):
    code = "ACCOUNT_LOCKED"
    default_message = (
        "Too many failed logins: this account is locked for a while. Try again later."
    )
    user_fixable = True


class InvalidPipelineKey(Unauthorized):
    code = "INVALID_PIPELINE_KEY"
    default_message = "The pipeline key is not valid."


# 403
class Forbidden(DomainError):
    code = "FORBIDDEN"
    status = 403
    default_message = "You are not allowed to do this."


# 404
class NotFound(DomainError):
    code = "NOT_FOUND"
    status = 404
    default_message = "The resource was not found."
    user_fixable = True

    @classmethod
    def of(cls, kind: str, resource_id: str) -> NotFound:
        """`Pipeline pip_01J… was not found.`; an id that is empty or not
        plain text is quoted, and a long one cut short."""
        shown = resource_id[:64]
        if not shown or not shown.isprintable() or " " in shown:
            shown = repr(shown)
        return cls(f"{kind} {shown} was not found.")


# 405
class MethodNotAllowed(DomainError):
    code = "METHOD_NOT_ALLOWED"
    status = 405
    default_message = "This method is not allowed on this resource."


# 409
class AlreadyExists(DomainError):
    code = "ALREADY_EXISTS"
    status = 409
    default_message = "The resource already exists."
    user_fixable = True


class ResourceInUse(DomainError):
    code = "RESOURCE_IN_USE"
    status = 409
    default_message = "The resource is in use."
    user_fixable = True


class RevisionConflict(DomainError):
    code = "REVISION_CONFLICT"
    status = 409
    default_message = "A newer revision exists."
    user_fixable = True


# 412
class PreconditionFailed(DomainError):
    code = "PRECONDITION_FAILED"
    status = 412
    default_message = "The resource has changed since you read it."
    user_fixable = True


# 413 / 415
class PayloadTooLarge(DomainError):
    code = "PAYLOAD_TOO_LARGE"
    status = 413
    default_message = "The request body is too large."


class UnsupportedMediaType(DomainError):
    code = "UNSUPPORTED_MEDIA_TYPE"
    status = 415
    default_message = "The request body must be application/json."


# 422
class ValidationFailed(DomainError):
    code = "VALIDATION_ERROR"
    status = 422
    default_message = "The input is not valid."
    user_fixable = True


class MissingPipelineParameters(DomainError):
    code = "MISSING_PIPELINE_PARAMETERS"
    status = 422
    default_message = "The pipeline lacks parameters the revision uses."
    user_fixable = True


class InvalidTransformation(DomainError):
    """A transformation's step document that cannot run; `details` names the
    step and field of every problem (`config.steps.2.condition`)."""

    code = "INVALID_TRANSFORMATION"
    status = 422
    default_message = "The transformation's steps are not valid."
    user_fixable = True


class IdempotencyKeyReused(DomainError):
    code = "IDEMPOTENCY_KEY_REUSED"
    status = 422
    default_message = "This Idempotency-Key was used with a different request body."
    user_fixable = True


# 429
class RateLimited(DomainError):
    code = "RATE_LIMITED"
    status = 429

    def __init__(self, retry_after: int) -> None:
        self.retry_after = max(1, retry_after)
        super().__init__(
            f"Rate limit exceeded. Retry after {self.retry_after} seconds."
        )


# 500 / 503
class InternalError(DomainError):
    pass


class ServiceUnavailable(DomainError):
    code = "SERVICE_UNAVAILABLE"
    status = 503
    default_message = "The database is unavailable. Try again shortly."


class SecretUnreadable(ServiceUnavailable):
    """A stored secret opens under none of the configured keys: the service is
    misconfigured (an ENCRYPTION_KEY_PREVIOUS removed before re-encryption
    finished, or a wrong key), not the request wrong."""

    default_message = (
        "A stored secret cannot be read with the configured encryption keys. "
        "The operator must set ENCRYPTION_KEY_PREVIOUS again and finish "
        "re-encrypting; GET /health/crypto reports the keys' state."
    )


class TransactionConflict(ServiceUnavailable):
    """The database broke a transaction off to settle a clash with a concurrent
    one (a deadlock, a serialization failure, a row changed since it was read).
    Nothing was written, so the same request can be sent again as it is."""

    default_message = (
        "A concurrent change collided with this one and nothing was written. "
        "Send the request again."
    )
    retry_after = 1

"""Domain exceptions raised by services; the faces translate them to HTTP/JSON or UI messages in one place."""

from __future__ import annotations


class DomainError(Exception):
    """Base class: `status` is the HTTP status a face should answer with."""

    status = 400
    error = "Bad request"

    def __init__(self, message: str | None = None, details: list[dict] | None = None):
        super().__init__(message or self.error)
        self.message = message or self.error
        self.details = details or []

    def body(self) -> dict:
        """The JSON error body every face answers with (the API's response, the MQTT errors topic)."""
        body: dict = {"error": self.error}
        if self.details:
            body["details"] = self.details
        elif self.message != self.error:
            body["detail"] = self.message
        return body

    def one_line(self) -> str:
        """The message, then each field's problem (a UI alert's text)."""
        details = "; ".join(f"{d.get('field', '')}: {d.get('message', '')}".strip(": ") for d in self.details)
        return f"{self.message} ({details})" if details else self.message


class ValidationFailed(DomainError):
    """Input that breaks the contract; `details` lists {index?, field, message} per problem."""

    status = 422
    error = "Invalid or missing input"


class BatchTooLarge(DomainError):
    status = 413
    error = "Batch too large"


class NotFound(DomainError):
    """Also used for objects outside the caller's scope, so their existence is not revealed."""

    status = 404
    error = "Not found"


class Forbidden(DomainError):
    status = 403
    error = "Forbidden"


class Conflict(DomainError):
    status = 409
    error = "Conflict"


class Unauthorized(DomainError):
    status = 401
    error = "Authentication required"


class RateLimited(DomainError):
    status = 429
    error = "Too many failed attempts"

    def __init__(self, retry_after_s: int, message: str | None = None):
        super().__init__(message)
        self.retry_after_s = retry_after_s


class ServiceUnavailable(DomainError):
    """A backing service (database, job queue, object store) is away: try again shortly."""

    status = 503
    error = "Service unavailable"


class QueueUnavailable(Exception):
    """The job queue (Redis) could not take a job; the faces answer the spec's 500 body with `detail`."""

    def __init__(self, exc: Exception):
        super().__init__(f"the job queue is unavailable: {exc.__class__.__name__}")
        self.detail = str(self)


class ForecastFailed(Exception):
    """No forecast: the model is missing, the job failed or no worker answered (the spec's 500)."""

    def __init__(self, detail: str | None, training: dict | None = None):
        super().__init__(detail or "Model missing or forecast failed")
        self.detail = detail
        # the scope has no model yet and its training is queued or running: {"job_id", "status",
        # "progress", "message"}, so a client (the Forecasts page) can show it and ask again
        self.training = training

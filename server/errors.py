"""The errors tidings raises, each with the code and sentence a client sees.

TidingsError
 ├── InvalidRequest      invalid_request   400
 │    └── PayloadTooLarge  too_large       413
 ├── Unauthorized        unauthorized      401
 ├── Forbidden           forbidden         403 (404 on job routes, so ids cannot be probed)
 ├── NotFound            not_found         404
 ├── Conflict            conflict          409
 │    └── JobTerminal    job_terminal      409
 │         └── JobCancelled                 (the user pressed cancel)
 ├── RateLimited         rate_limited      429
 └── StoreUnavailable    unavailable       503
"""

from __future__ import annotations


class TidingsError(Exception):
    """Base class: `code` and the sentence in `message` are what a client is shown."""

    code = "internal"
    http_status = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def to_dict(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}


class InvalidRequest(TidingsError):
    code = "invalid_request"
    http_status = 400


class PayloadTooLarge(InvalidRequest):
    code = "too_large"
    http_status = 413


class Unauthorized(TidingsError):
    code = "unauthorized"
    http_status = 401


class Forbidden(TidingsError):
    code = "forbidden"
    http_status = 403


class NotFound(TidingsError):
    code = "not_found"
    http_status = 404


class Conflict(TidingsError):
    code = "conflict"
    http_status = 409


class JobTerminal(Conflict):
    """The job is done, failed or cancelled and takes no more progress."""

    code = "job_terminal"

    def __init__(self, job_id: str, status: str) -> None:
        super().__init__(f"Job {job_id} is already {status} and takes no more updates.")
        self.status = status


class JobCancelled(JobTerminal):
    """The job was cancelled: a worker should stop."""


def terminal(job_id: str, status: str) -> JobTerminal:
    """The error for an update to a finished job, telling a cancellation apart."""
    return (JobCancelled if status == "cancelled" else JobTerminal)(job_id, status)


class RateLimited(TidingsError):
    code = "rate_limited"
    http_status = 429


class StoreUnavailable(TidingsError):
    code = "unavailable"
    http_status = 503

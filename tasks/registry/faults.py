"""A failure to write a run's results, told as what failed and how to finish the run: the MLflow
server out of reach, a full disk, a server error. Anything else is not recognised (None): a bug
stays an internal error."""

from __future__ import annotations

import errno

from tasks.errors import ServiceError, causes, first_line

__all__ = ["service_failure", "describe_failure"]

_UNREACHABLE = ("Failed to establish a new connection", "Connection refused",
                "Max retries exceeded", "Connection aborted", "Read timed out",
                "RemoteDisconnected", "Connection reset")


def service_failure(exc: BaseException, *, what: str, tracking_uri: str, kept: str,
                    seconds: float) -> ServiceError | None:
    """The sentence for `exc`, raised while doing `what` ("registering the model"), or None when
    it is not a service's or disk's failure. kept: what the run keeps for --resume."""
    cause = describe_failure(exc, tracking_uri)
    if cause is None:
        return None
    problem, fix = cause
    return ServiceError(
        f"{what} failed after {seconds:.0f} s of retries: {problem}; {kept}: {fix}, then run the "
        "same command again with --resume to finish this run without searching again"
    )


def describe_failure(exc: BaseException, tracking_uri: str) -> tuple[str, str] | None:
    """(what failed, how to fix it), or None when `exc` is not a service's or disk's failure."""
    for error in causes(exc):
        if isinstance(error, OSError) and error.errno == errno.ENOSPC:
            where = f" {error.filename}" if error.filename else ""
            return (f"the disk is full (No space left on device, writing{where})",
                    "free space on the disk that holds the artifact store")
    text = " ".join(str(error) for error in causes(exc))
    if any(marker in text for marker in _UNREACHABLE):
        return (f"the MLflow server at {tracking_uri} could not be reached",
                "start it again (or point --tracking-uri at one that runs)")
    for error in causes(exc):
        code = getattr(error, "error_code", None)
        if code in ("INTERNAL_ERROR", "TEMPORARILY_UNAVAILABLE", "REQUEST_LIMIT_EXCEEDED"):
            return (f"the MLflow server at {tracking_uri} answered with an error: "
                    f"{first_line(error)}", "look at the server's log and fix it")
        if isinstance(error, OSError) and error.errno in (errno.EACCES, errno.EROFS, errno.EDQUOT):
            return (f"the model's files could not be written: {error.strerror}"
                    f"{f' ({error.filename})' if error.filename else ''}",
                    "make the artifact store writable")
    return None

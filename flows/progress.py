"""What a Python API fit shows: the `automl` log as one line rewritten in place (a display in
Jupyter), Prefect's own console chatter held back meanwhile."""

from __future__ import annotations

import logging
import sys
import time
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = ["quiet_console", "progress_line"]


@contextmanager
def quiet_console() -> Iterator[None]:
    """Prefect's console handler (on the root logger, and uvicorn's) holds its peace during the
    fit. Prefect's API handler, which the UI reads, is untouched."""
    from prefect.logging.handlers import PrefectConsoleHandler

    loggers = [logging.getLogger(), *(logging.getLogger(name) for name in ("uvicorn", "fastapi"))]
    handlers = [h for lg in loggers for h in lg.handlers if isinstance(h, PrefectConsoleHandler)]
    levels = [h.level for h in handlers]
    for handler in handlers:
        handler.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        for handler, level in zip(handlers, levels, strict=True):
            handler.setLevel(level)


class _Line(logging.Handler):
    """The run's log as one line rewritten in place: a display updated in a Jupyter kernel,
    a carriage return on a terminal, plain lines elsewhere (a log file, CI)."""

    def __init__(self, verbose: int) -> None:
        super().__init__(logging.INFO if verbose else logging.CRITICAL + 1)
        self.started = time.monotonic()
        self.display = _jupyter_display() if verbose == 1 else None
        self.rewrite = verbose == 1 and self.display is None and sys.stderr.isatty()
        self.shown = False

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.show(f"[{time.monotonic() - self.started:5.0f} s] {record.getMessage()}")
        except Exception:  # noqa: BLE001 - a progress line must never fail the fit
            self.handleError(record)

    def show(self, text: str, final: bool = False) -> None:
        if self.level > logging.CRITICAL:
            return
        if self.display is not None:
            from IPython.display import Pretty

            self.display.update(Pretty(text))  # type: ignore[no-untyped-call]
        elif self.rewrite:
            sys.stderr.write("\r\x1b[2K" + text.splitlines()[0][:200] + ("\n" if final else ""))
            sys.stderr.flush()
        else:
            sys.stderr.write(text + "\n")
        self.shown = True

    def finish(self, summary: str) -> None:
        self.show(f"[{time.monotonic() - self.started:5.0f} s] {summary}", final=True)


def _jupyter_display() -> Any:
    """A display to update in place when running in a Jupyter kernel, else None."""
    shell = sys.modules.get("IPython")
    if shell is None:
        return None
    from IPython import get_ipython
    from IPython.display import Pretty, display

    ipython = get_ipython()
    if ipython is None or not hasattr(ipython, "kernel"):
        return None
    return display(Pretty("automl: starting"), display_id=True)  # type: ignore[no-untyped-call]


@contextmanager
def progress_line(verbose: int) -> Iterator[_Line]:
    """The `automl` logger to one updating line for the fit, and to the Prefect run's Logs tab
    (as PREFECT_LOGGING_EXTRA_LOGGERS=automl does for the command line)."""
    from prefect.logging.handlers import APILogHandler

    logger = logging.getLogger("automl")
    line = _Line(verbose)
    added: list[logging.Handler] = [line]
    if not any(isinstance(h, APILogHandler) for h in logger.handlers):
        added.append(APILogHandler())
    saved = logger.level, logger.propagate
    logger.setLevel(logging.INFO)
    logger.propagate = False  # the root logger's console handler would print every line again
    for handler in added:
        logger.addHandler(handler)
    try:
        yield line
    finally:
        for handler in added:
            logger.removeHandler(handler)
        logger.setLevel(saved[0])
        logger.propagate = saved[1]

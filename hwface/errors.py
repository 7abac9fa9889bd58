"""Errors that a user can fix. The CLI prints them as one line and exits with code 2."""


class HwfaceError(Exception):
    """Base class for bad input and unmet preconditions (never for bugs)."""


def error_line(exc: BaseException) -> str:
    """The one line of an exception worth showing a user (at most 400 characters).

    TVM's errors carry a traceback first and their message on the last line, so
    the last non-empty line is taken; an empty message gives the exception's type.
    """
    lines = [ln.strip() for ln in str(exc).strip().splitlines() if ln.strip()]
    return (lines[-1] if lines else type(exc).__name__)[:400]

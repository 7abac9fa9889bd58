"""Errors that a user can fix. The CLI prints them as one line and exits with code 2."""


class HwfaceError(Exception):
    """Base class for bad input and unmet preconditions (never for bugs)."""

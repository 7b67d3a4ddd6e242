"""Exceptions raised by kgt5mm.

Every error a user can cause with bad input derives from :class:`KGT5MMError`; the command
line prints it as one line instead of a traceback. Errors about a file carry its path, line
number and offending value (:class:`DataFormatError`).
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["KGT5MMError", "DataFormatError", "DatasetNotFoundError", "ConfigError"]


class KGT5MMError(Exception):
    """Base class of all user-facing kgt5mm errors."""


class DataFormatError(KGT5MMError, ValueError):
    """A data file is malformed; the message names the file, the line and the value.

    :param path: the file that holds the problem
    :param line: 1-based line number, or ``None`` for a problem with the whole file
    :param message: what is wrong
    :param value: the offending value (shown with ``repr``), if any
    """

    def __init__(self, path: str | Path, line: int | None, message: str, value: object = None):
        self.path = str(path)
        self.line = line
        self.value = value
        where = f"{self.path}:{line}" if line is not None else self.path
        shown = "" if value is None else f" (value: {value!r})"
        super().__init__(f"{where}: {message}{shown}")


class DatasetNotFoundError(KGT5MMError, FileNotFoundError):
    """A named dataset is neither embedded nor present in the data directory."""


class ConfigError(KGT5MMError, ValueError):
    """A configuration value is invalid; the message names the field and the value."""

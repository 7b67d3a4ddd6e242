"""Low-level readers of the text files behind every dataset format.

All readers report problems as :class:`kgt5mm.errors.DataFormatError` with the file, the 1-based
line number and the offending value. Bulk work is vectorized where it can be (integer tables are
converted by numpy in one call); when the vectorized check fails, a per-line pass locates the
first bad line for the message, so speed never costs the exact error location.

Blank lines are never dropped silently: :class:`TableRows` carries the count of skipped blank
lines, which the loaders add to the graph's ``skipped`` report.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from kgt5mm.errors import DataFormatError

# What an integer field may look like. Python's int() and numpy's string cast also accept digit
# separators ("1_0" -> 10) and non-ASCII digits ("١٢" -> 12); a data file holding them is more
# likely broken than meant, so they are refused.
_INTEGER = re.compile(r"[+-]?[0-9]+")
# A character no integer table may hold; found in one pass over the joined text.
_NOT_INTEGER_TEXT = re.compile(r"[^0-9+\-\s]")

__all__ = [
    "TableRows",
    "read_text",
    "read_lines",
    "read_table",
    "read_int_table",
    "parse_int",
    "read_count_header",
]

logger = logging.getLogger(__name__)


@dataclass
class TableRows:
    """Rows of a tab-separated file.

    :ivar path: the file the rows come from
    :ivar rows: one list of (stripped-of-CR) string fields per kept line
    :ivar lines: 1-based line number of each row (same length as ``rows``)
    :ivar skipped_blank: number of blank lines that were skipped
    """

    path: Path
    rows: list[list[str]]
    lines: list[int]
    skipped_blank: int = 0
    extra: dict[str, int] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.rows)

    def column(self, index: int) -> list[str]:
        """Field ``index`` of every row."""
        return [row[index] for row in self.rows]


def read_text(path: str | Path) -> str:
    """Read a UTF-8 text file (a leading BOM is removed; CRLF and CR become LF).

    :raises DataFormatError: when the file holds bytes that are not UTF-8, naming the line
    :raises FileNotFoundError: when the file does not exist
    """
    path = Path(path)
    data = path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        bad = data[error.start : error.end]
        raise DataFormatError(path, line, "undecodable bytes (file must be UTF-8)", bad) from None
    if text.startswith("\ufeff"):
        text = text[1:]
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text


def read_lines(path: str | Path) -> list[str]:
    """All lines of a text file without line terminators (a final newline adds no line)."""
    text = read_text(path)
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return lines


def parse_int(text: str) -> int:
    """``int(text)`` for plain ASCII integers only (optional sign, digits; surrounding blanks ok).

    :raises ValueError: for anything else, including the digit separators and non-ASCII digits
        that ``int()`` accepts (``"1_0"``, ``"١٢"``)
    """
    stripped = text.strip()
    if not _INTEGER.fullmatch(stripped):
        raise ValueError(f"not an integer: {text!r}")
    return int(stripped)


def read_count_header(path: Path, lines: list[str]) -> int:
    """Parse the first line of an OpenKE-style file, which holds the number of records."""
    if not lines:
        raise DataFormatError(path, None, "file is empty (expected a count on line 1)")
    head = lines[0].strip()
    try:
        count = parse_int(head)
    except ValueError:
        raise DataFormatError(path, 1, "first line must be the number of records", head) from None
    if count < 0:
        raise DataFormatError(path, 1, "record count must not be negative", head)
    return count


def read_table(
    path: str | Path,
    *,
    min_columns: int,
    max_columns: int | None = None,
    sep: str | None = "\t",
    first_line: int = 1,
    lines: list[str] | None = None,
    strip_fields: bool = True,
) -> TableRows:
    """Split a delimited text file into rows with exact column-count checks.

    :param path: the file (used for reading unless ``lines`` is given, and for messages)
    :param min_columns: fewest fields a row may have
    :param max_columns: most fields (default ``min_columns``); extra fields are an error
    :param sep: field separator; ``None`` splits on any run of whitespace
    :param first_line: 1-based number of the first line to parse (2 skips a count header)
    :param lines: already read lines of the file (saves a second read)
    :param strip_fields: strip surrounding whitespace from each field
    :raises DataFormatError: wrong column count or empty required field, naming file and line
    """
    path = Path(path)
    max_columns = min_columns if max_columns is None else max_columns
    if lines is None:
        lines = read_lines(path)
    rows: list[list[str]] = []
    numbers: list[int] = []
    blank = 0
    for number in range(first_line, len(lines) + 1):
        line = lines[number - 1]
        if not line.strip():
            blank += 1
            continue
        fields = line.split(sep) if sep is not None else line.split()
        if strip_fields:
            fields = [f.strip() for f in fields]
        if not min_columns <= len(fields) <= max_columns:
            expected = (
                f"{min_columns}" if min_columns == max_columns else f"{min_columns}-{max_columns}"
            )
            sep_name = "tab" if sep == "\t" else repr(sep) if sep else "whitespace"
            raise DataFormatError(
                path,
                number,
                f"expected {expected} {sep_name}-separated columns, found {len(fields)}",
                line,
            )
        rows.append(fields)
        numbers.append(number)
    if blank:
        logger.warning("%s: skipped %d blank line(s)", path, blank)
    return TableRows(path=path, rows=rows, lines=numbers, skipped_blank=blank)


def read_int_table(
    path: str | Path, *, columns: int, first_line: int = 1, lines: list[str] | None = None
) -> tuple[np.ndarray, np.ndarray, int]:
    """Read a whitespace-separated table of integers, vectorized.

    :returns: ``(values, line_numbers, skipped_blank)``: ``values`` int64 of shape
        ``(n, columns)``, ``line_numbers`` int64 ``(n,)`` giving each row's 1-based line
    :raises DataFormatError: wrong column count or a non-integer field (file, line, value)
    """
    path = Path(path)
    if lines is None:
        lines = read_lines(path)
    body = lines[first_line - 1 :]
    numbers = np.arange(first_line, first_line + len(body), dtype=np.int64)
    blank_mask = np.fromiter((not s.strip() for s in body), dtype=bool, count=len(body))
    skipped = int(blank_mask.sum())
    if skipped:
        body = [s for s, b in zip(body, blank_mask, strict=True) if not b]
        numbers = numbers[~blank_mask]
        logger.warning("%s: skipped %d blank line(s)", path, skipped)
    text = "\n".join(body)
    tokens = text.split()
    values: np.ndarray | None = None
    if len(tokens) == columns * len(body) and not _NOT_INTEGER_TEXT.search(text):
        try:
            values = np.array(tokens, dtype=np.str_).astype(np.int64).reshape(len(body), columns)
        except (ValueError, OverflowError):
            values = None
    if values is None:
        _locate_int_error(path, body, numbers, columns)
        raise AssertionError("unreachable: the vectorized check failed but no bad line was found")
    # The token count can match while lines are misaligned (one short, one long line).
    counts = np.fromiter((len(s.split()) for s in body), dtype=np.int64, count=len(body))
    if np.any(counts != columns):
        _locate_int_error(path, body, numbers, columns)
    return values, numbers, skipped


def _locate_int_error(path: Path, body: list[str], numbers: np.ndarray, columns: int) -> None:
    """Per-line pass that raises for the first malformed line of an integer table."""
    for line, number in zip(body, numbers.tolist(), strict=True):
        fields = line.split()
        if len(fields) != columns:
            raise DataFormatError(
                path, number, f"expected {columns} columns, found {len(fields)}", line
            )
        for value in fields:
            if not _INTEGER.fullmatch(value):
                raise DataFormatError(path, number, "not an integer id", value)
            try:  # the same conversion as the vectorized pass
                np.array(value, dtype=np.str_).astype(np.int64)
            except ValueError:
                raise DataFormatError(path, number, "not an integer id", value) from None
            except OverflowError:
                raise DataFormatError(path, number, "integer id outside the int64 range", value) from None

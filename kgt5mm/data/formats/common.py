"""Helpers shared by the dataset format readers (id maps, id lookup with line numbers)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from itertools import repeat
from pathlib import Path

import numpy as np

from kgt5mm.data.parsing import TableRows, parse_int
from kgt5mm.errors import DataFormatError

__all__ = [
    "IdMap",
    "id_map_from_rows",
    "lookup",
    "require_file",
    "check_not_empty",
    "humanize_relation",
    "index_rows",
]


class IdMap:
    """External ids in internal-id order plus the reverse dict.

    :ivar ids: external id of each internal id ``0..n-1``
    :ivar index: external id -> internal id
    """

    def __init__(self, ids: Sequence[str]):
        self.ids = list(ids)
        self.index = {value: i for i, value in enumerate(self.ids)}

    def __len__(self) -> int:
        return len(self.ids)


def require_file(path: Path, what: str) -> Path:
    """Return ``path`` or raise :class:`DataFormatError` saying which file is missing."""
    if not path.is_file():
        raise DataFormatError(path, None, f"missing {what} file")
    return path


def check_not_empty(path: Path, count: int, what: str) -> None:
    """Raise when a file that must hold records holds none."""
    if count == 0:
        raise DataFormatError(path, 1, f"{what} is empty (no records)", "")


def id_map_from_rows(
    table: TableRows,
    *,
    key_column: int,
    index_column: int,
    what: str,
    size: int | None = None,
    size_note: str = "",
) -> IdMap:
    """Build an :class:`IdMap` from ``key<sep>index`` rows, checking every index.

    Indices must be integers in ``0..n-1`` with no repeats; keys must be unique and non-empty.
    ``n`` is the number of rows, or ``size`` when the file declares its own count (OpenKE);
    then the caller checks that exactly ``size`` rows were read, and ``size_note`` (e.g.
    ``" (count on line 1)"``) is appended to the out-of-range message.
    """
    path = table.path
    n = len(table.rows) if size is None else size
    ids: list[str | None] = [None] * n
    seen_keys: dict[str, int] = {}
    for row, line in zip(table.rows, table.lines, strict=True):
        key, raw_index = row[key_column], row[index_column]
        if not key:
            raise DataFormatError(path, line, f"empty {what} id", row)
        try:
            index = parse_int(raw_index)
        except ValueError:
            raise DataFormatError(
                path, line, f"{what} index is not an integer", raw_index
            ) from None
        if not 0 <= index < n:
            raise DataFormatError(
                path, line, f"{what} index out of range 0..{n - 1}{size_note}", raw_index
            )
        if ids[index] is not None:
            raise DataFormatError(path, line, f"duplicate {what} index", raw_index)
        if key in seen_keys:
            raise DataFormatError(
                path, line, f"duplicate {what} id (first on line {seen_keys[key]})", key
            )
        seen_keys[key] = line
        ids[index] = key
    return IdMap([i for i in ids if i is not None])


def lookup(
    values: Sequence[str],
    index: dict[str, int],
    *,
    path: Path,
    lines: Sequence[int],
    what: str,
) -> np.ndarray:
    """Map external ids to internal ids (vectorized dict lookup); unknown ids raise.

    :returns: int64 ``(len(values),)``
    :raises DataFormatError: naming the first line whose value is not in ``index``
    """
    mapped = np.fromiter(map(index.get, values, repeat(-1)), dtype=np.int64, count=len(values))
    bad = np.flatnonzero(mapped < 0)
    if len(bad):
        first = int(bad[0])
        raise DataFormatError(path, lines[first], f"unknown {what}", values[first])
    return mapped


def index_rows(
    table: TableRows, num: int, *, what: str, allow_missing: bool
) -> tuple[list[str | None], list[int]]:
    """Rows ``index<TAB>value`` -> value per index ``0..num-1`` (``None`` where absent).

    :raises DataFormatError: non-integer or out-of-range index, duplicate index, or (unless
        ``allow_missing``) an index without a row
    :returns: ``(values, line_of_each_index)`` (line 0 where absent)
    """
    values: list[str | None] = [None] * num
    where = [0] * num
    for row, line in zip(table.rows, table.lines, strict=True):
        try:
            i = int(row[0])
        except ValueError:
            raise DataFormatError(
                table.path, line, f"{what} index is not an integer", row[0]
            ) from None
        if not 0 <= i < num:
            raise DataFormatError(
                table.path, line, f"unknown {what} index (expected 0..{num - 1})", row[0]
            )
        if values[i] is not None:
            raise DataFormatError(
                table.path, line, f"duplicate {what} index (first on line {where[i]})", row[0]
            )
        values[i] = row[1] if len(row) > 1 else ""
        where[i] = line
    if not allow_missing:
        missing = [i for i, v in enumerate(values) if v is None]
        if missing:
            raise DataFormatError(
                table.path, None, f"{len(missing)} {what} indices have no row (first: {missing[0]})"
            )
    return values, where


_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


def humanize_relation(name: str) -> str:
    """``"_member_of_domain_topic"`` / ``"wasBornIn"`` -> readable lower-case words."""
    text = name.strip().strip("_").replace("_", " ")
    text = _CAMEL.sub(" ", text)
    return " ".join(text.split()).lower() if text != text.upper() else " ".join(text.split())

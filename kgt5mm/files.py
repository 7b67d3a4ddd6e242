"""Atomic file output: a file is either absent, the old version, or complete, never half-written.

Every writer of kgt5mm output goes through :func:`atomic_path`: the content is written to a
temporary file in the destination folder, then moved over the destination with
``os.replace`` (atomic on POSIX and Windows); on any error the temporary file is removed and
the destination is left untouched::

    with atomic_path("out/preds.parquet") as tmp:
        pq.write_table(table, tmp)
    atomic_write_text("metrics.csv", text)
    atomic_write_json("metrics.json", {"mrr": 0.5})
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = ["atomic_path", "atomic_write_bytes", "atomic_write_json", "atomic_write_text"]


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; move it onto ``path`` when the block succeeds.

    The temporary name keeps the destination's suffix (``x.png`` -> ``.x.png.<random>.tmp.png``)
    so writers that pick a format from the suffix (matplotlib, pyarrow) still work.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp" + path.suffix)
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically; return ``path``."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write UTF-8 ``text`` to ``path`` atomically; return ``path``."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def atomic_write_json(path: str | Path, data: Any, *, indent: int | None = 2, **kwargs: Any) -> Path:
    """Write ``data`` as JSON (plus a final newline) to ``path`` atomically; return ``path``.

    Extra keyword arguments go to :func:`json.dumps` (e.g. ``default=``, ``ensure_ascii=``).
    """
    return atomic_write_text(path, json.dumps(data, indent=indent, **kwargs) + "\n")

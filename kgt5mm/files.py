"""Atomic file output: a file is either absent, the old version, or complete, never half-written.

Every writer of kgt5mm output goes through :func:`atomic_path`: the content is written to a
temporary file in the destination folder, then moved over the destination with
``os.replace`` (atomic on POSIX and Windows); on any error the temporary file is removed and
the destination is left untouched::

    with atomic_path("out/preds.parquet") as tmp:
        pq.write_table(table, tmp)
    atomic_write_text("metrics.csv", text)
    atomic_write_json("metrics.json", {"mrr": 0.5})

Folders (a model folder, a dataset export) go through :func:`atomic_dir` the same way.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = ["atomic_dir", "atomic_path", "atomic_write_bytes", "atomic_write_json", "atomic_write_text",
           "output_mode"]


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
        os.chmod(tmp, output_mode(path))
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def atomic_dir(path: str | Path, *, marker: str) -> Iterator[Path]:
    """Yield a temporary folder next to ``path``; swap it in for ``path`` when the block succeeds.

    An existing ``path`` is replaced only when it is empty or holds ``marker`` (a file that
    output of this kind always has), so a folder of someone else's files is never deleted. On
    any error the temporary folder is removed and ``path`` is left as it was.

    :raises KGT5MMError: when ``path`` is a file, or a non-empty folder without ``marker``
    """
    from kgt5mm.errors import KGT5MMError

    path = Path(path).absolute()
    if path.exists() and not path.is_dir():
        raise KGT5MMError(f"refusing to replace {str(path)!r}: it is a file (choose a new folder)")
    if path.exists() and not (path / marker).exists() and any(path.iterdir()):
        raise KGT5MMError(f"refusing to replace {str(path)!r}: it is not empty and holds no {marker} "
                          "(choose a new folder)")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        yield tmp
        os.chmod(tmp, output_mode(path, directory=True))  # mkdtemp makes it private (0700)
        if path.exists():
            old = path.with_name(f".{path.name}.old-{os.getpid()}")
            os.replace(path, old)
            try:
                os.replace(tmp, path)
            except BaseException:
                os.replace(old, path)  # put the previous version back
                raise
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def output_mode(path: str | Path, *, directory: bool = False) -> int:
    """Permission bits for a new output at ``path``: those of the file it replaces, if any.

    ``tempfile`` creates private files (0600) and folders (0700); renamed into place they would
    stay unreadable to other users. A new output gets what ``open``/``mkdir`` would have given
    it under the process umask (0666/0777 minus the umask).
    """
    path = Path(path)
    if path.exists():
        return path.stat().st_mode & 0o7777
    umask = os.umask(0)
    os.umask(umask)
    return (0o777 if directory else 0o666) & ~umask


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

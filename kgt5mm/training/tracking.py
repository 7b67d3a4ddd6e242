"""Metric logs of a run: JSONL and CSV files, TensorBoard (through Accelerate), a PNG of curves.

Only the main process writes. ``metrics.jsonl`` holds one record per line
(``{"step": ..., "kind": "train" | "valid" | "test", ...}``); ``metrics.csv`` is rewritten
from it (union of columns) whenever a validation is logged and at the end.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
from pathlib import Path
from typing import Any

from kgt5mm.files import atomic_path, atomic_write_text

__all__ = ["MetricsLog", "plot_curves", "plot_validation_runs", "read_records", "validation_curve"]

logger = logging.getLogger(__name__)


def read_records(path: str | Path, *, allow_torn_tail: bool = False) -> list[dict[str, Any]]:
    """The records of a ``metrics.jsonl`` file (blank lines skipped).

    :param allow_torn_tail: ignore (with a warning) a last line that has no newline and is not
        JSON: what a job killed while appending leaves behind
    :raises DataFormatError: naming the file and line of a record that is not JSON
    """
    return _parse_records(Path(path).read_text(encoding="utf-8"), path, allow_torn_tail=allow_torn_tail)


def _parse_records(text: str, path: str | Path, *, allow_torn_tail: bool) -> list[dict[str, Any]]:
    """:func:`read_records` on the file's ``text`` (``path`` names it in errors)."""
    from kgt5mm.errors import DataFormatError

    records = []
    lines = text.split("\n")
    for line_no, line in enumerate(lines, 1):
        if line.strip():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as err:
                if allow_torn_tail and line_no == len(lines):  # no newline after it
                    logger.warning("%s: ignoring a truncated last line %d (killed writer?)", path, line_no)
                    continue
                raise DataFormatError(path, line_no, f"not JSON ({err.msg})", line.strip()[:80]) from err
    return records


class MetricsLog:
    """Append-only metric records of one run (main process), mirrored to the trackers."""

    def __init__(self, run_dir: str | Path, *, accelerator=None, enabled: bool = True) -> None:
        self.run_dir = Path(run_dir)
        self.accelerator = accelerator
        self.enabled = enabled
        self.jsonl = self.run_dir / "metrics.jsonl"
        self.csv = self.run_dir / "metrics.csv"
        self.records: list[dict[str, Any]] = []
        if enabled and self.jsonl.exists():
            text = self.jsonl.read_text(encoding="utf-8")
            self.records = _parse_records(text, self.jsonl, allow_torn_tail=True)
            if text and not text.endswith("\n"):  # a torn or unterminated last line: rewrite
                atomic_write_text(self.jsonl, "".join(json.dumps(r) + "\n" for r in self.records))

    def truncate(self, step: int) -> None:
        """Forget records after ``step`` (a resumed run repeats those steps)."""
        if not self.enabled:
            return
        kept = [r for r in self.records if r["step"] <= step and r.get("kind") != "test"]
        if len(kept) != len(self.records):
            self.records = kept
            atomic_write_text(self.jsonl, "".join(json.dumps(r) + "\n" for r in kept))

    def log(self, kind: str, step: int, values: dict[str, Any]) -> None:
        """Record ``values`` of ``kind`` ("train", "valid", "test") at ``step``."""
        if self.accelerator is not None:
            self.accelerator.log({f"{kind}/{k}": v for k, v in values.items()
                                  if isinstance(v, (int, float))}, step=step)
        if not self.enabled:
            return
        record = {"step": step, "kind": kind, **values}
        self.records.append(record)
        self.jsonl.parent.mkdir(parents=True, exist_ok=True)
        with self.jsonl.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")
        if kind != "train":
            self.write_csv()

    def write_csv(self) -> None:
        """Rewrite ``metrics.csv`` from the records."""
        if not self.enabled or not self.records:
            return
        columns: list[str] = []
        for record in self.records:
            columns.extend(k for k in record if k not in columns)
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=columns)
        writer.writeheader()
        writer.writerows(self.records)
        atomic_write_text(self.csv, buffer.getvalue())


def plot_curves(records: list[dict[str, Any]], path: str | Path, *, metric: str) -> Path | None:
    """PNG with the training loss (left) and the validation ``metric`` (right) over steps."""
    train = [(r["step"], r["loss"]) for r in records if r.get("kind") == "train" and "loss" in r]
    valid = validation_curve(records, metric=metric)
    if not train and not valid:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    if train:
        left.plot(*zip(*train, strict=True), lw=1)
    left.set(xlabel="optimizer step", ylabel="train loss (token cross-entropy)", title="loss")
    left.grid(alpha=0.3)
    if valid:
        right.plot(*zip(*valid, strict=True), marker="o")
    right.set(xlabel="optimizer step", ylabel=metric, title="validation")
    right.grid(alpha=0.3)
    return _save_figure(fig, path)


def _save_figure(fig, path: str | Path) -> Path:
    """Write ``fig`` as a PNG atomically (temporary file, then rename) and close it."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100)
    plt.close(fig)
    return Path(path)


def validation_curve(records: list[dict[str, Any]], *, metric: str,
                     x: str = "step") -> list[tuple[float, float]]:
    """``(x, metric)`` points of a run's validation records, in step order.

    :param records: ``metrics.jsonl`` records of one run
    :param x: ``"step"``, or ``"epoch"``: each validation step converted with the run's own
        epochs per step (from its last train record), so runs with different batch sizes or
        dataset sizes line up by passes over the data
    :raises KGT5MMError: when ``x`` is unknown, or ``"epoch"`` and no train record has one
    """
    from kgt5mm.errors import KGT5MMError

    if x not in ("step", "epoch"):
        raise KGT5MMError(f"x must be 'step' or 'epoch', got {x!r}")
    valid = sorted((r["step"], r[metric]) for r in records
                   if r.get("kind") == "valid" and isinstance(r.get(metric), (int, float))
                   and not math.isnan(r[metric]))
    if x == "step":
        return [(float(s), float(v)) for s, v in valid]
    train = [r for r in records if r.get("kind") == "train" and r.get("epoch") and r.get("step")]
    if not train:
        raise KGT5MMError("x='epoch' needs train records with an 'epoch' field")
    last = max(train, key=lambda r: r["step"])
    per_step = last["epoch"] / last["step"]
    return [(s * per_step, float(v)) for s, v in valid]


def plot_validation_runs(runs: dict[str, list[dict[str, Any]]], path: str | Path, *,
                         metric: str, x: str = "step", title: str | None = None) -> Path:
    """PNG overlaying the validation ``metric`` of several runs (label -> records).

    A run's test record, when it has one, is drawn as a star at its last validation point.
    :raises KGT5MMError: when no run has a validation record of ``metric``
    """
    from kgt5mm.errors import KGT5MMError

    curves = {label: validation_curve(records, metric=metric, x=x) for label, records in runs.items()}
    if not any(curves.values()):
        raise KGT5MMError(f"no validation records of {metric!r} in runs {sorted(runs)}")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axis = plt.subplots(figsize=(7, 4.5))
    for label, points in curves.items():
        if not points:
            continue
        line, = axis.plot(*zip(*points, strict=True), marker="o", ms=3, label=label)
        tests = [r[metric] for r in runs[label] if r.get("kind") == "test"
                 and isinstance(r.get(metric), (int, float))]
        if tests:
            axis.plot(points[-1][0], tests[-1], marker="*", ms=12, color=line.get_color(),
                      label=f"{label}: test {tests[-1]:.3f}")
    axis.set(xlabel="epoch" if x == "epoch" else "optimizer step", ylabel=metric,
             title=title or f"validation {metric}")
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8)
    return _save_figure(fig, path)

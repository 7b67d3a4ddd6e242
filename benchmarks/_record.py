"""Shared helper of the benchmark scripts: write one JSON record per run.

Every benchmark in this folder ends with :func:`write_record`, which stores the command, the
git commit, dataset, split, model size, machine, date and the measured figures under
``benchmarks/results/<name>-<UTC timestamp>.json`` so results can be compared across commits.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

__all__ = ["machine_description", "write_record"]

#: where records go; KGT5MM_RESULTS_DIR redirects them (tests, scratch runs)
RESULTS_DIR = Path(os.environ.get("KGT5MM_RESULTS_DIR") or Path(__file__).resolve().parent / "results")


def _git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True,
            cwd=Path(__file__).resolve().parent,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True,
            text=True, cwd=Path(__file__).resolve().parent,
        ).stdout.strip()
        return out + ("+dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def machine_description() -> str:
    """One line naming the CPU model, core count and, when present, the CUDA device."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    text = f"{cpu}, {os.cpu_count()} cores, {platform.system()} {platform.machine()}"
    try:
        import torch

        if torch.cuda.is_available():
            text += f", GPU {torch.cuda.get_device_name(0)}"
        text += f", torch {torch.__version__}"
    except ImportError:
        pass
    return text


def write_record(
    name: str,
    *,
    dataset: str,
    split: str | None,
    model_size: str | None,
    figures: dict[str, Any],
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write ``benchmarks/results/<name>-<timestamp>.json`` atomically and return its path."""
    now = _dt.datetime.now(_dt.timezone.utc)
    record = {
        "benchmark": name,
        "command": " ".join(shlex.quote(a) for a in [Path(sys.executable).name, *sys.argv]),
        "git_commit": _git_commit(),
        "dataset": dataset,
        "split": split,
        "model_size": model_size,
        "machine": machine_description(),
        "date": now.isoformat(timespec="seconds"),
        "figures": figures,
        **(extra or {}),
    }
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{name}-{now.strftime('%Y%m%dT%H%M%SZ')}.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(record, indent=2, sort_keys=False) + "\n")
    tmp.replace(path)
    return path

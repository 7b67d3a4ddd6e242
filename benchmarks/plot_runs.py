"""Overlay the validation curves of several training runs in one PNG.

    python benchmarks/plot_runs.py checkpoints/mkg_w_cpu_2proc checkpoints/mkg_w_2proc_query_only \
        --labels "full context, 6 epochs" "query only, 12 epochs" --x epoch \
        --output benchmarks/plots/mkg_w_hour_context_vs_query_only.png

Each run folder's ``metrics.jsonl`` is read; its test record, if any, is drawn as a star at the
end of its curve. ``--x epoch`` lines runs up by passes over the data (each run's own epochs per
step), ``--x step`` by optimizer steps.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from kgt5mm.errors import KGT5MMError
from kgt5mm.training import plot_validation_runs, read_records


def run_records(run_dir: Path) -> list[dict]:
    path = run_dir / "metrics.jsonl"
    if not path.is_file():
        raise KGT5MMError(f"{path}: no such file (is {run_dir} a training run folder?)")
    return read_records(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", type=Path, help="training run folders (holding metrics.jsonl)")
    parser.add_argument("--labels", nargs="+", help="one legend label per run (default: folder names)")
    parser.add_argument("--metric", default="both.realistic.mrr", help="validation metric key")
    parser.add_argument("--x", choices=["epoch", "step"], default="epoch", help="x axis")
    parser.add_argument("--title", help="plot title")
    parser.add_argument("--output", type=Path, required=True, help="PNG to write")
    args = parser.parse_args(argv)
    labels = args.labels or [run.name for run in args.runs]
    if len(labels) != len(args.runs):
        parser.error(f"{len(labels)} labels for {len(args.runs)} runs")
    try:
        runs = {label: run_records(run) for label, run in zip(labels, args.runs, strict=True)}
        path = plot_validation_runs(runs, args.output, metric=args.metric, x=args.x, title=args.title)
    except KGT5MMError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

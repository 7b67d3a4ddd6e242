"""Write the JSON record of a finished training run (``train.py``) to ``benchmarks/results/``.

    python benchmarks/record_run.py checkpoints/mkg_w_2proc_query_only \
        --command "torchrun --standalone --nproc_per_node 2 train.py --config ... name=..." \
        --wall-minutes 45.5

Training runs are launched with ``train.py``, not by a benchmark script, so their figures reach
``benchmarks/results/`` through this script: the run folder's ``metrics.json`` (test metrics of
the best checkpoint, and, from this version on, training time, throughput, processes and
parameter count), its validation records in ``metrics.jsonl`` and its resolved ``config.yaml``.
Pass ``--train-minutes`` for runs whose ``metrics.json`` predates ``train_seconds`` (the
``train time`` line ``train.py`` prints).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
# The checkout's kgt5mm, as train.py (at the repository root) used it, whatever is installed:
# run_scripts/launch.sh calls this script after a run, and an hour's run must not end in an
# import error.
sys.path.insert(1, str(Path(__file__).resolve().parents[1]))

from _record import write_record  # noqa: E402

from kgt5mm.errors import KGT5MMError  # noqa: E402
from kgt5mm.training import read_records, validation_curve  # noqa: E402

SIDES = ("both", "head", "tail")
KEYS = ("mrr", "hits_at_1", "hits_at_3", "hits_at_10")


def _read_json(path: Path):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise KGT5MMError(f"{path}: no such file (is the run finished, with train.test_at_end?)") from None
    except json.JSONDecodeError as err:
        raise KGT5MMError(f"{path}:{err.lineno}: not JSON ({err.msg})") from err


def run_figures(run_dir: Path, *, train_minutes: float | None = None,
                wall_minutes: float | None = None) -> tuple[dict, dict]:
    """``(figures, config)`` of a finished run folder."""
    saved = _read_json(run_dir / "metrics.json")
    config = yaml.safe_load((run_dir / "config.yaml").read_text(encoding="utf-8"))
    metrics = saved["metrics"]
    figures: dict = {f"test.{side}.{key}": round(metrics[f"{side}.realistic.{key}"], 5)
                     for side in SIDES for key in KEYS if f"{side}.realistic.{key}" in metrics}
    figures["test.both.in_beam_share"] = round(metrics.get("both.in_beam_share", float("nan")), 5)
    figures["test.num_queries"] = metrics.get("num_queries")
    curve = validation_curve(read_records(run_dir / "metrics.jsonl"), metric=config["train"]["metric"])
    figures["valid_curve"] = [(int(step), round(value, 5)) for step, value in curve]
    figures["valid.num_queries"] = config["train"].get("eval_queries")
    figures["best_step"], figures["steps"] = saved.get("best_step"), saved.get("step")
    seconds = saved.get("train_seconds")
    if train_minutes is not None:
        seconds = train_minutes * 60
    if seconds is None:
        raise KGT5MMError(f"{run_dir / 'metrics.json'} has no train_seconds: pass --train-minutes")
    figures["train_minutes"] = round(seconds / 60, 1)
    if wall_minutes is not None:
        figures["wall_minutes"] = wall_minutes
    for key in ("examples_per_second", "num_processes", "num_parameters"):
        if key in saved:
            figures[key] = saved[key]
    return figures, config


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dir", type=Path, help="finished training run folder")
    parser.add_argument("--command", required=True, help="the command that trained the run")
    parser.add_argument("--train-minutes", type=float, help="training time, if metrics.json lacks it")
    parser.add_argument("--wall-minutes", type=float, help="wall time of the whole command")
    parser.add_argument("--trained-at", help="git commit the run was trained at (the record's "
                        "git_commit is the one it was recorded at)")
    args = parser.parse_args(argv)
    try:
        figures, config = run_figures(args.run_dir, train_minutes=args.train_minutes,
                                      wall_minutes=args.wall_minutes)
    except KGT5MMError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    size = config["model"].get("size") or config["model"].get("pretrained")
    params = figures.get("num_parameters")
    path = write_record(f"run-{config['name']}", dataset=config["data"]["dataset"], split="test",
                        model_size=f"{size}" + (f" ({params / 1e6:.2f}M)" if params else ""),
                        figures=figures, extra={"training_command": args.command, "trained_at_commit": args.trained_at,
                               "config": config})
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

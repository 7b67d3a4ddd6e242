"""Quality and cost of candidate views: trained model folders evaluated with and without them.

Each model is evaluated twice on the same split in the same run, with the settings saved in
its folder: once with one context per query (the baseline) and once with
``--views`` candidate views (``eval.candidate_views``: each answer candidate of a query is
also scored by teacher forcing on its own view, the context listing that candidate alone, and
keeps its best score). Writes one JSON record (both metric sets, the evaluation times, the
number of views scored) under benchmarks/results/ and prints a Markdown
row per model for BENCHMARKS.md.

    python benchmarks/bench_candidate_views.py checkpoints/wn9_60min_hide/model --views 8
    python benchmarks/bench_candidate_views.py checkpoints/mkg_y_2proc_12ep/model --data-dir ../shared/data
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _record import write_record  # noqa: E402

KEYS = ("mrr", "hits_at_1", "hits_at_3", "hits_at_10")


def _figures(result, seconds: float, views: int) -> dict:
    m = result.metrics
    out = {f"{side}.{key}": round(m[f"{side}.realistic.{key}"], 5)
           for side in ("both", "head", "tail") for key in KEYS}
    out["in_beam_share"] = round(m["both.in_beam_share"], 5)
    out["num_queries"] = int(m["num_queries"])
    out["views_scored"] = views
    out["seconds"] = round(seconds, 1)
    return out


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+", help="model folders (save_pretrained)")
    parser.add_argument("--data-dir", default=None, help="folder holding the non-embedded datasets")
    parser.add_argument("--split", default="test", choices=("valid", "test"))
    parser.add_argument("--views", type=int, default=8, help="eval.candidate_views of the second run")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)

    import torch

    from kgt5mm.hub import KGT5MMModel
    from kgt5mm.modeling import count_parameters

    torch.set_num_threads(args.threads)
    figures: dict = {}
    datasets, sizes = [], []
    for folder in args.models:
        model = KGT5MMModel.from_pretrained(folder)
        kg = model.load_graph(data_dir=args.data_dir)
        queries = kg.queries(args.split)
        builder = model.context_builder(kg)
        row = {}
        for views in (0, args.views):
            config = model.eval_config(candidate_views=views)
            scored = len(builder.build_candidate_views(queries, views)[0]) if views else 0
            start = time.perf_counter()
            result = model.evaluate(split=args.split, kg=kg, config=config)
            row["views" if views else "baseline"] = _figures(result, time.perf_counter() - start, scored)
        base, new = row["baseline"], row["views"]
        row["mrr_gain"] = round(new["both.mrr"] - base["both.mrr"], 5)
        row["time_ratio"] = round(new["seconds"] / base["seconds"], 2)
        figures[folder] = row
        datasets.append(kg.name)
        sizes.append(f"{count_parameters(model.model)[1] / 1e6:.2f}M")
        print(f"| {folder} | {kg.name} | {base['both.mrr']:.3f} | {new['both.mrr']:.3f} | "
              f"{new['both.hits_at_1']:.3f} | {new['both.hits_at_10']:.3f} | "
              f"{new['head.mrr']:.3f} / {new['tail.mrr']:.3f} | "
              f"{new['views_scored']} views, {row['time_ratio']:.2f}x time |")
    path = write_record("bench_candidate_views", dataset=",".join(dict.fromkeys(datasets)),
                        split=args.split, model_size=",".join(sizes), figures=figures,
                        extra={"views": args.views, "threads": args.threads})
    print(f"wrote {path}")
    return figures


if __name__ == "__main__":
    main()

"""Quality and cost of candidate views: trained model folders evaluated with and without them.

Each model is evaluated twice on the same split in the same run, with the settings saved in
its folder: once with one context per query (the baseline) and once with
``--views`` candidate views (``eval.candidate_views``: each answer candidate of a query is
also scored by teacher forcing on its own view, the context listing that candidate alone, and
keeps its best score). With ``--compare-reuse`` a third evaluation forces every view again,
including the one-candidate views whose score the full context's decoding already gave (as
before that reuse), so the saving is measured in the same run. Writes one JSON record (the
metric sets, the evaluation times, the views built and the views teacher-forced) under
benchmarks/results/ and prints a Markdown row per model for BENCHMARKS.md.

    python benchmarks/bench_candidate_views.py checkpoints/wn9_60min_hide/model --views 8
    python benchmarks/bench_candidate_views.py checkpoints/mkg_y_2proc_12ep/model --data-dir ../shared/data
    python benchmarks/bench_candidate_views.py checkpoints/wn9_60min_views64/model --views 64 --compare-reuse
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


def _figures(result, seconds: float, views: int, forced: int) -> dict:
    m = result.metrics
    out = {f"{side}.{key}": round(m[f"{side}.realistic.{key}"], 5)
           for side in ("both", "head", "tail") for key in KEYS}
    out["in_beam_share"] = round(m["both.in_beam_share"], 5)
    out["num_queries"] = int(m["num_queries"])
    out["views_scored"] = views
    out["views_forced"] = forced
    out["seconds"] = round(seconds, 1)
    return out


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+", help="model folders (save_pretrained)")
    parser.add_argument("--data-dir", default=None, help="folder holding the non-embedded datasets")
    parser.add_argument("--split", default="test", choices=("valid", "test"))
    parser.add_argument("--views", type=int, default=8, help="eval.candidate_views of the second run")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--compare-reuse", action="store_true",
                        help="also time the views with every view teacher-forced (no reuse of the "
                             "full context's scores)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)

    import numpy as np
    import torch

    import kgt5mm.evaluation.evaluator as evaluator
    from kgt5mm.hub import KGT5MMModel
    from kgt5mm.modeling import count_parameters

    torch.set_num_threads(args.threads)
    forced = [0]
    paired, known = evaluator.score_paired_entities, evaluator._known_view_scores

    def counting(model, trie, *, entities, **kwargs):
        forced[0] += len(entities)
        return paired(model, trie, entities=entities, **kwargs)

    def nothing_known(views, *_args):
        return np.full(len(views), np.nan, dtype=np.float32)

    evaluator.score_paired_entities = counting
    variants = [("baseline", 0, known), ("views", args.views, known)]
    if args.compare_reuse:
        variants.append(("views_no_reuse", args.views, nothing_known))
    figures: dict = {}
    datasets, sizes = [], []
    for folder in args.models:
        model = KGT5MMModel.from_pretrained(folder)
        kg = model.load_graph(data_dir=args.data_dir)
        queries = kg.queries(args.split)
        builder = model.context_builder(kg)
        row = {}
        for name, views, reuse in variants:
            config = model.eval_config(candidate_views=views)
            scored = len(builder.build_candidate_views(queries, views)[0]) if views else 0
            evaluator._known_view_scores, forced[0] = reuse, 0
            start = time.perf_counter()
            result = model.evaluate(split=args.split, kg=kg, config=config)
            row[name] = _figures(result, time.perf_counter() - start, scored, forced[0])
        evaluator._known_view_scores = known
        base, new = row["baseline"], row["views"]
        row["mrr_gain"] = round(new["both.mrr"] - base["both.mrr"], 5)
        row["time_ratio"] = round(new["seconds"] / base["seconds"], 2)
        if "views_no_reuse" in row:
            old = row["views_no_reuse"]
            row["reuse_speedup"] = round(old["seconds"] / new["seconds"], 2)
            row["reuse_mrr_change"] = round(new["both.mrr"] - old["both.mrr"], 6)
            print(f"{folder}: views {new['seconds']} s ({new['views_forced']} forced) vs "
                  f"{old['seconds']} s ({old['views_forced']} forced) without reuse: "
                  f"{row['reuse_speedup']:.2f}x, MRR change {row['reuse_mrr_change']:+.6f}")
        figures[folder] = row
        datasets.append(kg.name)
        sizes.append(f"{count_parameters(model.model)[1] / 1e6:.2f}M")
        print(f"| {folder} | {kg.name} | {base['both.mrr']:.3f} | {new['both.mrr']:.3f} | "
              f"{new['both.hits_at_1']:.3f} | {new['both.hits_at_10']:.3f} | "
              f"{new['head.mrr']:.3f} / {new['tail.mrr']:.3f} | "
              f"{new['views_scored']} views, {row['time_ratio']:.2f}x time |")
    path = write_record("bench_candidate_views", dataset=",".join(dict.fromkeys(datasets)),
                        split=args.split, model_size=",".join(sizes), figures=figures,
                        extra={"views": args.views, "threads": args.threads,
                               "compare_reuse": args.compare_reuse})
    print(f"wrote {path}")
    return figures


if __name__ == "__main__":
    main()

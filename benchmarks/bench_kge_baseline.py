"""Same-protocol embedding baseline: ComplEx (or DistMult) ranked with kgt5mm's evaluator.

Trains a KGE model on each dataset's train split, keeps the epoch with the best valid MRR, and
ranks the full test split in both directions with the project's filtered realistic-rank
protocol (the same code path as the seq2seq models). Writes one JSON record per dataset under
benchmarks/results/ and prints a Markdown table row for BENCHMARKS.md.

    python benchmarks/bench_kge_baseline.py --datasets wn9_img
    python benchmarks/bench_kge_baseline.py --datasets mkg_y mkg_w --data-dir ../shared/data --dim 256
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _record import write_record  # noqa: E402

from kgt5mm.baselines import KGEConfig, evaluate_kge, train_kge  # noqa: E402
from kgt5mm.data import load_graph  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=["wn9_img"], help="dataset names or paths")
    parser.add_argument("--data-dir", default=None, help="folder holding the non-embedded datasets")
    parser.add_argument("--model", default="complex", choices=["complex", "distmult"])
    parser.add_argument("--dim", type=int, default=256, help="embedding size (per complex part)")
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--lr", type=float, default=0.1)
    parser.add_argument("--regularization", type=float, default=0.05)
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--eval-every", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    config = KGEConfig(model=args.model, dim=args.dim, epochs=args.epochs, lr=args.lr,
                       regularization=args.regularization, batch_size=args.batch_size,
                       eval_every=args.eval_every, seed=args.seed)
    rows = []
    for name in args.datasets:
        kg = load_graph(name, data_dir=args.data_dir)
        start = time.perf_counter()
        model = train_kge(kg, config)
        train_seconds = time.perf_counter() - start
        test = evaluate_kge(model, kg, split="test")
        m = test.metrics
        figures = {
            "parameters": model.num_parameters(),
            "train_seconds": round(train_seconds, 1),
            "best_epoch": model.best_epoch,
            "valid_mrr": round(model.best_valid_mrr, 4),
            "eval_seconds": round(test.seconds, 2),
            **{k: round(v, 4) for k, v in m.items() if k.startswith(("both.", "head.", "tail."))
               and ("realistic" in k or "in_beam" in k)},
            "num_queries": m["num_queries"],
        }
        path = write_record(f"kge-{args.model}-{kg.name}", dataset=kg.name, split="test",
                            model_size=f"{args.model} dim {args.dim} ({model.num_parameters():,} params)",
                            figures=figures, extra={"config": dataclasses.asdict(config)})
        rows.append(
            f"| {kg.name} | {args.model} d={args.dim} | {model.num_parameters():,} | "
            f"{m['both.realistic.mrr']:.3f} | {m['both.realistic.hits_at_1']:.3f} | "
            f"{m['both.realistic.hits_at_3']:.3f} | {m['both.realistic.hits_at_10']:.3f} | "
            f"{train_seconds / 60:.1f} min | {path.name} |"
        )
    print("| dataset | model | params | MRR | H@1 | H@3 | H@10 | train time | record |")
    print("|---|---|---|---|---|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()

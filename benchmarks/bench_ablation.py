"""Context ablation on validation MRR: query only, + neighbours (random / link-aware), + text.

Trains one model per variant from the same config with the same budget (only the context
settings change), then evaluates the best checkpoint on the FULL validation split (both
directions, filtered, realistic rank). Writes one JSON record per run under
benchmarks/results/ and prints a Markdown table for BENCHMARKS.md.

    python benchmarks/bench_ablation.py --config run_scripts/wn9_img_cpu.yaml
    python benchmarks/bench_ablation.py --config run_scripts/mkg_y_cpu.yaml \
        --variants query_only linkaware linkaware_text random_text -- data.data_dir=../shared/data

Variants (context overrides on top of the config):
  query_only      the query alone (KGT5)
  random          + neighbour triples, random selection (KGT5-context)
  linkaware       + neighbour triples ranked by relevance to the query relation
  random_text     random neighbours + the entity's description / VLM text
  linkaware_text  link-aware neighbours + description / VLM text (the full kgt5mm context)
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _record import write_record  # noqa: E402

from kgt5mm.config import Config  # noqa: E402
from kgt5mm.training import train  # noqa: E402

NO_TEXT = ["context.include_description=false", "context.include_vlm_text=false",
           "context.include_captions=false"]
#: variant -> context overrides
VARIANTS: dict[str, list[str]] = {
    "query_only": ["context.max_neighbours=0", "context.include_examples=false", *NO_TEXT],
    "random": ["context.neighbour_selection=random", *NO_TEXT],
    "linkaware": ["context.neighbour_selection=relevance", *NO_TEXT],
    "random_text": ["context.neighbour_selection=random"],
    "linkaware_text": ["context.neighbour_selection=relevance"],
}
#: every ablation run: validate once on the full valid split at the end, no export
RUN_OVERRIDES = ["train.eval_every_steps=null", "train.eval_queries=null",
                 "train.save_model=false", "train.tensorboard=false"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True, help="YAML config in run_scripts/")
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--output-dir", default="checkpoints/ablation", help="parent of the run folders")
    parser.add_argument("--test", action="store_true",
                        help="also rank the test split at the end (config's eval settings)")
    parser.add_argument("overrides", nargs="*", help="extra config overrides for every variant")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    rows = []
    for variant in args.variants:
        base = Config.from_yaml(args.config)
        overrides = [*args.overrides, *RUN_OVERRIDES, f"train.test_at_end={str(args.test).lower()}",
                     *VARIANTS[variant],
                     f"name={base.name}-{variant}", f"train.output_dir={args.output_dir}"]
        config = Config.from_yaml(args.config, overrides=overrides)
        start = time.perf_counter()
        result = train(config)
        seconds = time.perf_counter() - start
        m = result.valid_metrics
        figures = {
            "valid_mrr": round(m["both.realistic.mrr"], 4),
            "valid_hits_at_1": round(m["both.realistic.hits_at_1"], 4),
            "valid_hits_at_10": round(m["both.realistic.hits_at_10"], 4),
            "valid_in_beam_share": round(m["both.in_beam_share"], 4),
            "valid_queries": m["num_queries"],
            "steps": result.global_step,
            "examples_per_second": round(result.examples_per_second, 1),
            "wall_seconds": round(seconds, 1),
        }
        for key, value in result.test_metrics.items():
            if key.startswith("both.realistic.") or key in ("both.in_beam_share", "num_queries"):
                figures[f"test.{key}"] = round(value, 4) if isinstance(value, float) else value
        path = write_record(f"ablation-{config.name}", dataset=config.data.dataset,
                            split="valid+test" if args.test else "valid",
                            model_size=config.model.size, figures=figures,
                            extra={"variant": variant, "overrides": overrides})
        rows.append(f"| {variant} | {figures['valid_mrr']:.3f} | {figures['valid_hits_at_1']:.3f} | "
                    f"{figures['valid_hits_at_10']:.3f} | {figures['valid_in_beam_share']:.3f} | "
                    f"{result.global_step} | {seconds / 60:.1f} min | {path.name} |"
                    + (f" test MRR {result.test_metrics['both.realistic.mrr']:.3f} |" if args.test else ""))
    print(f"ablation of {args.config} ({' '.join(args.overrides) or 'no extra overrides'})")
    print("| variant | valid MRR | H@1 | H@10 | in beam | steps | wall | record |")
    print("|---|---|---|---|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()

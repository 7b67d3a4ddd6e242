"""``kgt5mm evaluate``: filtered ranking metrics of a saved model on a split.

::

    kgt5mm evaluate checkpoints/wn9_img_cpu/model --split test --num-beams 10
    kgt5mm evaluate user/kgt5mm-wn9-img --dataset wn9_img --output-dir eval_test
    kgt5mm evaluate MODEL --exhaustive --dataset wn9_img_tiny      # exact, small graphs
    kgt5mm evaluate MODEL --filter-aware-beams                     # room for known answers
    kgt5mm evaluate MODEL --context-breakdown                      # answer in context or not
    kgt5mm evaluate MODEL --candidate-views 64                     # candidates on own views
    accelerate launch -m kgt5mm.cli evaluate MODEL --split test     # sharded over processes

Decoding settings (beam, top-k, batch size, query subset, source length) default to the ones
saved with the model, so the command reproduces the figures of its model card; the flags given
override them (``--all-queries`` drops a saved subset).

Writes ``metrics.json`` (flat metric keys, per-relation rows, ranks per query),
``per_relation.tsv`` and ``per_relation_mrr.png`` into ``--output-dir`` and prints the
headline metrics. ``--context-breakdown`` adds ``context_breakdown.tsv``: the same rows (and an
"all" row per side) for the queries whose answer is among the neighbours listed in their
context and for the rest, which shows how much of the score comes from copying.
"""

from __future__ import annotations

import argparse
from pathlib import Path

__all__ = ["add_model_arguments", "register", "run"]


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments shared by evaluate and predict: model, dataset, decoding settings."""
    parser.add_argument("model", help="model folder (save_pretrained) or Hugging Face Hub id")
    parser.add_argument("--dataset", default=None,
                        help="dataset name or folder (default: the one named in the model config)")
    parser.add_argument("--data-dir", default=None,
                        help="folder holding named datasets (default: the model config's)")
    parser.add_argument("--num-beams", type=int, default=None,
                        help="beam size (default: --top-k if given, else the model's saved eval.num_beams)")
    parser.add_argument("--top-k", type=int, default=None,
                        help="candidates kept per query (default: the model's saved eval.top_k, else 10)")
    parser.add_argument("--batch-size", type=int, default=None,
                        help="queries decoded together (default: the model's saved eval.batch_size)")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu"),
                        help="auto: Accelerate's device (one GPU per process under accelerate launch; "
                             "pick GPUs with CUDA_VISIBLE_DEVICES); cpu: force the CPU")
    parser.add_argument("--revision", default=None, help="Hub revision of a model id")
    parser.add_argument("--candidate-views", type=int, default=None, metavar="N",
                        help="also score each answer candidate of a query (up to N) by teacher "
                             "forcing on its own view, the context listing that candidate alone, "
                             "keeping each entity's best score; 0 = off (default: the model's saved "
                             "eval.candidate_views, else 0)")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``evaluate`` command."""
    parser = subparsers.add_parser(
        "evaluate", help="filtered MRR / Hits@k of a saved model on a split",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_model_arguments(parser)
    parser.add_argument("--split", default="test", choices=("train", "valid", "test"),
                        help="split to evaluate")
    parser.add_argument("--exhaustive", action="store_true",
                        help="score every entity by teacher forcing (exact; small graphs)")
    parser.add_argument("--filter-aware-beams", action="store_true",
                        help="give each query as many extra beams (and candidates) as it has "
                             "other known answers, which filtering removes (up to --max-beams)")
    parser.add_argument("--max-beams", type=int, default=None,
                        help="largest widened beam with --filter-aware-beams (default: saved, else 64)")
    parser.add_argument("--max-queries", type=int, default=None,
                        help="evaluate a seeded random subset of this many queries "
                             "(default: the model's saved eval.max_queries, usually all)")
    parser.add_argument("--all-queries", action="store_true",
                        help="evaluate every query even if the saved settings name a subset")
    parser.add_argument("--seed", type=int, default=None, help="seed of the --max-queries subset")
    parser.add_argument("--context-breakdown", action="store_true",
                        help="also split the metrics by whether the answer is among the "
                             "neighbours of the query's context (context_breakdown.tsv)")
    parser.add_argument("--output-dir", default=None,
                        help="where to write the results (default: <model folder>/eval_<split> "
                             "or ./eval_<split> for a Hub id)")
    parser.set_defaults(handler=run)


def load_for_command(args: argparse.Namespace):
    """(KGT5MMModel, KnowledgeGraph, Accelerator) from the shared arguments."""
    from accelerate import Accelerator

    from kgt5mm.hub import KGT5MMModel

    accelerator = Accelerator(cpu=args.device == "cpu")
    model = KGT5MMModel.from_pretrained(args.model, revision=args.revision)
    model.model.to(accelerator.device)
    if args.dataset is not None:
        from kgt5mm.data import load_graph

        kg = load_graph(args.dataset, data_dir=args.data_dir) if args.data_dir else load_graph(args.dataset)
        model._check_graph(kg)
    else:
        kg = model.load_graph(data_dir=args.data_dir)
    return model, kg, accelerator


def run(args: argparse.Namespace) -> int:
    """Handler of ``kgt5mm evaluate``."""
    import json
    from dataclasses import replace

    model, kg, accelerator = load_for_command(args)
    # the settings saved with the model (as on its model card), then the flags given here
    config = model.eval_config(num_beams=args.num_beams or args.top_k, top_k=args.top_k,
                               batch_size=args.batch_size, exhaustive=args.exhaustive or None,
                               filter_aware_beams=args.filter_aware_beams or None,
                               max_beams=args.max_beams, max_queries=args.max_queries, seed=args.seed,
                               candidate_views=args.candidate_views)
    if args.all_queries:
        config = replace(config, max_queries=None)
    result = model.evaluate(split=args.split, kg=kg, config=config, accelerator=accelerator)
    if accelerator.is_main_process:
        if args.output_dir is not None:
            out = Path(args.output_dir)
        elif Path(args.model).is_dir():
            out = Path(args.model) / f"eval_{args.split}"
        else:
            out = Path(f"eval_{args.split}")
        headline = {k: result.metrics[k] for k in (
            "both.realistic.mrr", "both.realistic.hits_at_1", "both.realistic.hits_at_3",
            "both.realistic.hits_at_10", "both.in_beam_share", "num_queries")}
        in_context = None
        if args.context_breakdown:
            from kgt5mm.evaluation import answer_in_context

            in_context = answer_in_context(model.context_builder(kg), result.queries)
            headline["answer_in_context_share"] = float(in_context.mean()) if len(in_context) else 0.0
            for row in result.context_breakdown(in_context):
                if row["relation"] == -1 and row["side"] == "both":
                    group = "answer_in_context" if row["answer_in_context"] else "answer_not_in_context"
                    headline[f"{group}.both.realistic.mrr"] = row["mrr"]
        paths = result.save(out, in_context=in_context)
        print(json.dumps({"dataset": kg.name, "split": args.split, **headline}, indent=2))
        print(f"wrote {', '.join(str(p) for p in paths.values())}")
    return 0

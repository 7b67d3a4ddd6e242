"""Benchmark of the context builder: speed, and link-aware vs random neighbour selection.

(a) Build time of the source strings of all training queries (both directions, each with its
    own train edge excluded, as in training) of a dataset; MKG-W has 68,392. Single process.
(b) The model-free measure of link-aware selection: the share of valid/test queries whose answer
    is among the neighbour edges of the built context, ``relevance`` vs ``random`` selection
    at equal budget (evaluation mode: no edge excluded). Also reported: the share whose answer
    is a train neighbour of the head at all (the ceiling of any selection).

Run::

    python benchmarks/bench_context.py --data-dir ../shared/data                  # all
    python benchmarks/bench_context.py --data-dir ../shared/data --skip-speed \\
        --datasets wn9_img --budgets 32 64

Token counts: whitespace words by default; ``--subword`` also times the build with a byte-level
BPE (8k, trained here with ``tokenizers`` on the graph's names and texts) as ``count_tokens``.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _record import write_record  # noqa: E402

from kgt5mm.context import SPECIAL_TOKENS, ContextBuilder, ContextConfig  # noqa: E402
from kgt5mm.data import load_graph  # noqa: E402


def subword_counter(kg, vocab_size: int = 8000):
    """A byte-level BPE ``str -> int`` counter trained on the graph's text (offline)."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=["<unk>", *SPECIAL_TOKENS],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    corpus = list(kg.entity_names) + list(kg.relation_texts)
    for texts in (kg.entity_descriptions, kg.entity_vlm_text):
        if texts is not None:
            corpus += list(texts)
    tok.train_from_iterator(corpus, trainer=trainer)
    return lambda text: len(tok.encode(text).ids)


def time_training_queries(kg, config: ContextConfig, count_tokens=None) -> dict:
    """Seconds to build all training sources (own edge excluded) and their mean length."""
    queries = kg.queries("train")
    n = len(kg.splits["train"])
    rows = np.concatenate([np.arange(n), np.arange(n)])
    t0 = time.perf_counter()
    builder = ContextBuilder(kg, config, count_tokens=count_tokens)
    t1 = time.perf_counter()
    sources = builder.build_many(queries, exclude_edges=rows, epoch=0)
    t2 = time.perf_counter()
    t3 = time.perf_counter()
    again = builder.build_many(queries[:2000], exclude_edges=rows[:2000], epoch=1)
    t4 = time.perf_counter()
    words = np.array([len(s.split()) for s in sources])
    return {
        "queries": len(queries),
        "init_s": round(t1 - t0, 3),
        "build_s": round(t2 - t1, 3),
        "queries_per_s": round(len(queries) / (t2 - t1), 1),
        "warm_queries_per_s": round(len(again) / (t4 - t3), 1),
        "mean_words": round(float(words.mean()), 1),
    }


_WORKER_STATE: dict = {}


def _build_chunk(bounds: tuple[int, int]) -> int:
    builder, queries, rows = _WORKER_STATE["args"]
    lo, hi = bounds
    return len(builder.build_many(queries[lo:hi], exclude_edges=rows[lo:hi], epoch=0))


def time_training_queries_parallel(kg, config: ContextConfig, count_tokens=None, workers: int = 2) -> dict:
    """Like :func:`time_training_queries` but split over ``workers`` forked processes
    (as dataloader workers do); the builder is created once, before the fork."""
    import multiprocessing as mp

    queries = kg.queries("train")
    n = len(kg.splits["train"])
    rows = np.concatenate([np.arange(n), np.arange(n)])
    builder = ContextBuilder(kg, config, count_tokens=count_tokens)
    _WORKER_STATE["args"] = (builder, queries, rows)
    step = -(-len(queries) // (4 * workers))
    chunks = [(i, min(i + step, len(queries))) for i in range(0, len(queries), step)]
    t0 = time.perf_counter()
    with mp.get_context("fork").Pool(workers) as pool:
        built = sum(pool.map(_build_chunk, chunks))
    seconds = time.perf_counter() - t0
    return {"queries": built, "workers": workers, "build_s": round(seconds, 3),
            "queries_per_s": round(built / seconds, 1)}


def answer_in_context(kg, config: ContextConfig, splits=("valid", "test")) -> dict:
    """Shares of queries whose answer is an included neighbour / the first one, and the ceiling."""
    builder = ContextBuilder(kg, config)
    hit = hit_text = ceiling = first = total = 0
    nbr = kg.neighbours
    for split in splits:
        for entity, q, answer in kg.queries(split).tolist():
            built = builder.select(entity, q)
            hit += answer in built.neighbours
            first += bool(built.neighbours) and built.neighbours[0] == answer
            hit_text += f" {kg.entity_names[answer]}" in built.text
            ceiling += answer in set(nbr.of(entity)[1].tolist())
            total += 1
    return {"queries": total, "answer_in_context": round(hit / total, 4),
            "answer_name_in_text": round(hit_text / total, 4),
            "answer_is_first_neighbour": round(first / total, 4),
            "answer_is_train_neighbour": round(ceiling / total, 4)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default="../shared/data", help="folder with mkg_w/, mkg_y/, wn9_img/")
    parser.add_argument("--speed-dataset", default="mkg_w", help="dataset of the speed measurement")
    parser.add_argument("--datasets", nargs="+", default=["wn9_img", "mkg_y", "mkg_w"],
                        help="datasets of the relevance-vs-random measurement")
    parser.add_argument("--budgets", nargs="+", type=int, default=[16, 32, 64, 128],
                        help="budgets (whitespace words) of the relevance-vs-random measurement")
    parser.add_argument("--skip-speed", action="store_true", help="skip (a)")
    parser.add_argument("--skip-relevance", action="store_true", help="skip (b)")
    parser.add_argument("--subword", action="store_true", help="also time with a BPE counter")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    figures: dict = {}
    if not args.skip_speed:
        kg = load_graph(args.speed_dataset, data_dir=args.data_dir)
        figures["speed_whitespace"] = time_training_queries(kg, ContextConfig())
        print(f"(a) {args.speed_dataset}: {figures['speed_whitespace']}")
        figures["speed_random_selection"] = time_training_queries(
            kg, ContextConfig(neighbour_selection="random"))
        print(f"(a) random selection: {figures['speed_random_selection']}")
        figures["speed_whitespace_2proc"] = time_training_queries_parallel(kg, ContextConfig())
        print(f"(a) 2 processes: {figures['speed_whitespace_2proc']}")
        if args.subword:
            counter = subword_counter(kg)
            figures["speed_subword"] = time_training_queries(kg, ContextConfig(), counter)
            print(f"(a) with BPE-8k count_tokens: {figures['speed_subword']}")
            figures["speed_subword_2proc"] = time_training_queries_parallel(kg, ContextConfig(), counter)
            print(f"(a) with BPE-8k count_tokens, 2 processes: {figures['speed_subword_2proc']}")
    if not args.skip_relevance:
        for name in args.datasets:
            kg = load_graph(name, data_dir=args.data_dir)
            for budget in args.budgets:
                row = {}
                for mode in ("relevance", "random"):
                    cfg = ContextConfig(budget_tokens=budget, neighbour_selection=mode)
                    row[mode] = answer_in_context(kg, cfg)
                row["ratio"] = round(row["relevance"]["answer_in_context"]
                                     / max(row["random"]["answer_in_context"], 1e-9), 3)
                figures[f"{name}.budget{budget}"] = row
                print(f"(b) {name} budget {budget}: relevance {row['relevance']['answer_in_context']:.4f}"
                      f" random {row['random']['answer_in_context']:.4f} (x{row['ratio']}),"
                      f" first neighbour {row['relevance']['answer_is_first_neighbour']:.4f} vs"
                      f" {row['random']['answer_is_first_neighbour']:.4f},"
                      f" ceiling {row['relevance']['answer_is_train_neighbour']:.4f}")
    path = write_record("bench_context", dataset=",".join([args.speed_dataset, *args.datasets]),
                        split="train (a); valid+test (b)", model_size=None, figures=figures)
    print(f"record: {path}")


if __name__ == "__main__":
    main()

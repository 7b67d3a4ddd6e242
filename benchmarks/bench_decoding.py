"""Benchmark of trie-constrained decoding: ranking speed, trie masking cost, trie scaling.

Run (each part can be run alone; all write a record under benchmarks/results/)::

    python benchmarks/bench_decoding.py ranking --sizes tiny small --queries 128 64 --batch-size 16 32 64
    python benchmarks/bench_decoding.py ranking --sizes --model-dir checkpoints/RUN/model --batch-size 16 32 64
    python benchmarks/bench_decoding.py scaling --entities 1000 10000 100000 1000000 --name-length 4
    python benchmarks/bench_decoding.py build --entities 5000000

- ``ranking``: top-10 constrained ranking on WN9-IMG test queries (real names, a SentencePiece
  tokenizer fitted to WN9-IMG, randomly initialised T5 of the named shape): kgt5mm's
  :func:`~kgt5mm.decoding.constrained_beam_search` against ``model.generate`` with
  ``prefix_allowed_tokens_fn`` over a dict-of-dicts trie (GENRE style), same model, same
  batches, same beam size, length penalty 0, measured in one run (interleaved rounds, median
  times; ``--repeats``). The speed comparison runs
  our search with ``eos_within_top_beams=True`` (transformers' rule for finished beams) and
  checks that both top-10 lists (entities and scores) are identical query by query. Our
  default pooling (every EOS continuation kept, used by ``kgt5mm evaluate``) is timed too and
  compared with generate's lists by exact teacher-forced scores. ``--model-dir`` runs the same
  comparison on trained model folders (their own tokenizer, names, context settings and
  dataset's test queries, sources cut as ``kgt5mm evaluate`` cuts them); ``--sizes`` with no
  value skips the random shapes.
- ``scaling``: synthetic entity names (random token sequences + EOS) from 1k to 1M entities;
  queries/s of top-10 ranking (sizes timed in interleaved rounds, median reported), time per
  beam-search step and the share of decoding time spent in trie operations (allowed edges,
  transitions, lookups). ``--name-length 4`` gives every name 4 tokens, so each size runs
  the same decoder steps on the same live rows and only the trie's cost differs; with random
  lengths (default 1-6) the step count depends on how the random model's beams meet the
  names.
- ``build``: build time and peak memory (tracemalloc) of the trie for N synthetic names.
"""

from __future__ import annotations

import argparse
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _record import write_record  # noqa: E402

from kgt5mm.decoding import EntityTrie, constrained_beam_search, score_all_entities  # noqa: E402


def _model(size: str, vocab: int, seed: int = 0):
    from transformers import T5Config, T5ForConditionalGeneration

    from kgt5mm.modeling import ModelConfig

    torch.manual_seed(seed)
    shape = ModelConfig(size=size).shape()
    config = T5Config(vocab_size=vocab, **shape, dropout_rate=0.0, pad_token_id=0, eos_token_id=1,
                      decoder_start_token_id=0)
    return T5ForConditionalGeneration(config).eval()


def _dict_trie(sequences):
    root: dict = {}
    for seq in sequences:
        node = root
        for tok in seq:
            node = node.setdefault(tok, {})
    return root


def _prefix_fn(root, pad: int):
    def allowed(batch_id, sent):  # GENRE-style callback: one Python walk per beam row
        node = root
        for tok in sent.tolist()[1:]:
            if tok not in node:
                return [pad]  # after EOS (terminal) only padding
            node = node[tok]
        return list(node.keys()) or [pad]
    return allowed


def _ranking_methods(model, trie, batches, k: int, prefix_fn) -> dict:
    """The four timed methods of ``ranking`` over the same batches (name -> callable)."""
    from kgt5mm.decoding.beam import _encode

    def encoder_only():
        # both searches run the encoder once per query, so t_hf / t_encoder bounds the
        # speedup any decoding strategy can reach on this model and batch
        with torch.inference_mode():
            for b in batches:
                _encode(model, b["input_ids"], b["attention_mask"])

    def ours_compatible():  # transformers' rule for finished beams: identical outputs
        return [constrained_beam_search(model, trie, input_ids=b["input_ids"],
                                        attention_mask=b["attention_mask"], num_beams=k,
                                        top_k=k, eos_within_top_beams=True) for b in batches]

    def ours_default_pooling():  # every EOS continuation kept (kgt5mm evaluate)
        return [constrained_beam_search(model, trie, input_ids=b["input_ids"],
                                        attention_mask=b["attention_mask"], num_beams=k,
                                        top_k=k) for b in batches]

    def hf_generate():
        with torch.inference_mode():
            return [model.generate(
                input_ids=b["input_ids"], attention_mask=b["attention_mask"], num_beams=k,
                num_return_sequences=k, max_new_tokens=trie.max_length + 1, do_sample=False,
                length_penalty=0.0, early_stopping=False, prefix_allowed_tokens_fn=prefix_fn,
                return_dict_in_generate=True, output_scores=True,
            ) for b in batches]

    return {"encoder": encoder_only, "ours": ours_compatible, "default": ours_default_pooling,
            "hf": hf_generate}


def run_ranking(args) -> dict:
    from transformers.generation import LogitsProcessorList  # noqa: F401  (API check)

    from kgt5mm.context import ContextBuilder, ContextConfig
    from kgt5mm.data import load_graph
    from kgt5mm.modeling import TokenizerConfig, count_parameters, encode_targets, train_tokenizer
    from kgt5mm.modeling.tokenizer import token_counter

    figures: dict = {}
    extra: dict = {"threads": torch.get_num_threads()}
    if args.sizes:  # randomly initialised shapes, a tokenizer fitted to WN9-IMG
        kg = load_graph("wn9_img")
        tokenizer = train_tokenizer(kg, config=TokenizerConfig(vocab_size=args.vocab))
        targets = encode_targets(tokenizer, kg.entity_names)
        builder = ContextBuilder(kg, ContextConfig(budget_tokens=args.budget),
                                 count_tokens=token_counter(tokenizer))
        trie = EntityTrie.from_sequences(targets, vocab_size=len(tokenizer), eos_token_id=1, pad_token_id=0)
        extra.update(vocab=len(tokenizer), entities=kg.num_entities)
        for size, n_queries in zip(args.sizes, args.queries, strict=True):
            sources = builder.build_many(kg.queries("test")[:n_queries])
            _rank_one(args, figures, size, _model(size, len(tokenizer)), tokenizer, trie, targets, sources)
    for folder, n_queries in zip(args.model_dir, args.model_queries, strict=True):
        # a trained model folder: its own tokenizer, names, context settings and dataset
        from kgt5mm.evaluation import build_trie
        from kgt5mm.hub import KGT5MMModel

        bundle = KGT5MMModel.from_pretrained(folder)
        kg = bundle.load_graph(data_dir=args.data_dir) if args.data_dir else bundle.load_graph()
        targets = encode_targets(bundle.tokenizer, bundle.entity_names)
        trie = build_trie(bundle.model, bundle.tokenizer, bundle.entity_names)
        sources = bundle.context_builder(kg).build_many(kg.queries("test")[:n_queries])
        label = f"trained:{bundle.dataset}:{Path(folder).resolve().parent.name}"
        extra[label] = {"model_dir": str(folder), "vocab": len(bundle.tokenizer),
                        "entities": kg.num_entities, "parameters": count_parameters(bundle.model)[1]}
        _rank_one(args, figures, label, bundle.model.eval(), bundle.tokenizer, trie, targets, sources,
                  max_length=bundle.eval_config().max_source_length)  # cut as evaluate cuts
    sizes = list(args.sizes) + [k for k in extra if k.startswith("trained:")]
    datasets = (["wn9_img"] if args.sizes else []) + [k.split(":")[1] for k in sizes if k.startswith("trained:")]
    write_record("bench_decoding_ranking", dataset=",".join(dict.fromkeys(datasets)), split="test",
                 model_size=",".join(sizes), figures=figures, extra=extra)
    return figures


def _rank_one(args, figures: dict, label: str, model, tokenizer, trie, targets, sources, *,
              max_length: int | None = None) -> None:
    """Time the four ranking methods on one model at every batch size and compare outputs."""
    eos, pad = trie.eos_token_id, trie.pad_token_id
    prefix_fn = _prefix_fn(_dict_trie(targets), pad)  # generate's constraint: the same names
    for batch_size in args.batch_size:
        batches = []
        for start in range(0, len(sources), batch_size):
            batches.append(tokenizer(sources[start:start + batch_size], padding=True,
                                     truncation=max_length is not None, max_length=max_length,
                                     return_tensors="pt"))
        k = 10
        # Timed in interleaved rounds (encoder alone, ours, ours with default pooling,
        # generate), median per method: a shared CPU's noise hits all four alike.
        methods = _ranking_methods(model, trie, batches, k, prefix_fn)
        times: dict[str, list[float]] = {name: [] for name in methods}
        outputs = {}
        for _round in range(args.repeats):
            for name, method in methods.items():
                t0 = time.perf_counter()
                outputs[name] = method()
                times[name].append(time.perf_counter() - t0)
        ours, ours_default, hf = outputs["ours"], outputs["default"], outputs["hf"]
        t_encoder, t_ours, t_default, t_hf = (float(np.median(times[n])) for n in methods)
        round_ratios = [h / o for h, o in zip(times["hf"], times["ours"], strict=True)]
        # compare
        same = same_scores = default_same = 0
        ours_better = hf_better = tie_diff = 0
        for b, o, d, h in zip(batches, ours, ours_default, hf, strict=True):
            seqs = h.sequences[:, 1:].clone()
            after_eos = (torch.cumsum((seqs == eos).long(), dim=1) - (seqs == eos).long()) > 0
            seqs[after_eos] = pad  # generate pads finished rows with EOS; the trie expects pad
            ents = trie.entity_of(trie.walk(seqs)).reshape(len(o.entities), k)
            hf_scores = h.sequences_scores.reshape(len(o.entities), k)
            # exact scores of the entities either search returned (teacher forcing)
            union = torch.unique(torch.cat([d.entities.reshape(-1), ents.reshape(-1)]))
            union = union[union >= 0]
            sub = score_all_entities(model, trie, input_ids=b["input_ids"],
                                     attention_mask=b["attention_mask"], entities=union)
            exact = torch.full((len(o.entities), trie.num_entities), float("nan"))
            exact[:, union] = sub
            for row in range(len(o.entities)):
                if o.entities[row].tolist() == ents[row].tolist():
                    same += 1
                    same_scores += bool(torch.allclose(o.scores[row], hf_scores[row], atol=1e-4))
                a, c = d.entities[row].tolist(), ents[row].tolist()
                if a == c:
                    default_same += 1
                    continue
                sa = exact[row, [e for e in a if e >= 0]].sort(descending=True).values
                sc = exact[row, [e for e in c if e >= 0]].sort(descending=True).values
                n = min(len(sa), len(sc))
                if torch.allclose(sa[:n], sc[:n], atol=1e-4) and len(sa) == len(sc):
                    tie_diff += 1
                elif (sa[:n] >= sc[:n] - 1e-4).all() and len(sa) >= len(sc):
                    ours_better += 1
                else:
                    hf_better += 1
        fig = {
            "queries": len(sources), "batch_size": batch_size, "num_beams": k,
            "ours_queries_per_s": len(sources) / t_ours, "hf_queries_per_s": len(sources) / t_hf,
            "speedup": t_hf / t_ours, "speedup_per_round": round_ratios,
            "repeats": args.repeats, "identical_top10_share": same / len(sources),
            "encoder_s": t_encoder, "encoder_share_of_ours": t_encoder / t_ours,
            "speedup_bound_if_decoding_were_free": t_hf / t_encoder,
            "identical_scores_share": same_scores / len(sources),
            "ours_default_queries_per_s": len(sources) / t_default,
            "default_vs_hf_identical": default_same,
            "default_vs_hf_differ_ours_better": ours_better,
            "default_vs_hf_differ_hf_better": hf_better,
            "default_vs_hf_differ_only_in_tied_order": tie_diff,
        }
        key = label if len(args.batch_size) == 1 else f"{label}@{batch_size}"
        figures[key] = fig
        print(key, fig, flush=True)


def synthetic_names(n: int, vocab: int, *, seed: int = 0, min_len: int = 1, max_len: int = 6):
    """``(n, max_len + 1)`` int32 matrix of distinct random token sequences + EOS, -1 padded."""
    rng = np.random.default_rng(seed)
    out = np.full((n, max_len + 1), -1, dtype=np.int32)
    filled = 0
    while filled < n:
        m = int((n - filled) * 1.1) + 16
        lengths = rng.integers(min_len, max_len + 1, size=m)
        body = rng.integers(2, vocab, size=(m, max_len)).astype(np.int32)
        cols = np.arange(max_len + 1)[None, :]
        cand = np.where(cols < lengths[:, None], np.pad(body, ((0, 0), (0, 1))), -1).astype(np.int32)
        cand[np.arange(m), lengths] = 1
        merged = np.unique(np.concatenate([out[:filled], cand]), axis=0)
        rng.shuffle(merged)
        take = min(n, len(merged))
        out[:take] = merged[:take]
        filled = take
    return out


class _Timed:
    """Wraps the trie's per-step methods, sums their wall time and counts decoding steps."""

    def __init__(self, trie: EntityTrie):
        self.total = 0.0
        self.steps = 0
        for name in ("allowed_edges", "allowed_mask", "next_states", "entity_of"):
            original = getattr(trie, name)

            def wrapped(*a, _f=original, _n=name, **kw):
                t = time.perf_counter()
                out = _f(*a, **kw)
                self.total += time.perf_counter() - t
                self.steps += _n == "allowed_edges"  # one call per beam-search step
                return out

            setattr(trie, name, wrapped)


def run_scaling(args) -> dict:
    """Queries/s vs number of names; sizes are timed in interleaved rounds, median per size.

    With ``--name-length L`` every name has exactly ``L`` tokens + EOS, so every search runs
    ``L + 1`` decoder steps on the same number of live rows whatever the number of names, and
    the remaining difference between sizes is the trie's own cost. With random lengths
    (``--min-length``/``--max-length``), the step count depends on how the random model's beams
    meet the names and is reported per size.
    """
    model = _model(args.size, args.vocab)
    torch.manual_seed(1)
    ids = torch.randint(2, args.vocab, (args.num_queries, args.source_len))
    lo, hi = (args.name_length, args.name_length) if args.name_length else (args.min_length, args.max_length)
    import kgt5mm.decoding.beam as beam_module

    cut = {"s": 0.0}  # the wide-node cut is constraint work too: counted with the trie's share
    original_cut = beam_module._row_best_candidates

    def timed_cut(*a, **kw):
        t = time.perf_counter()
        out = original_cut(*a, **kw)
        cut["s"] += time.perf_counter() - t
        return out

    beam_module._row_best_candidates = timed_cut
    tries, timers = {}, {}
    for n in args.entities:
        names = synthetic_names(n, args.vocab, min_len=lo, max_len=hi)
        tries[n] = EntityTrie.from_sequences(names, vocab_size=args.vocab, eos_token_id=1, pad_token_id=0)
        timers[n] = _Timed(tries[n])
        constrained_beam_search(model, tries[n], input_ids=ids[: args.batch_size], num_beams=10)  # warm
    runs: dict[int, list[dict]] = {n: [] for n in args.entities}
    for _round in range(args.repeats):
        for n in args.entities:
            timer = timers[n]
            timer.total, timer.steps, cut["s"] = 0.0, 0, 0.0
            t0 = time.perf_counter()
            for start in range(0, len(ids), args.batch_size):
                constrained_beam_search(model, tries[n], input_ids=ids[start:start + args.batch_size],
                                        num_beams=10, top_k=10)
            elapsed = time.perf_counter() - t0
            runs[n].append({"elapsed": elapsed, "trie_s": timer.total + cut["s"], "steps": timer.steps})
    figures = {}
    for n in args.entities:
        elapsed = [r["elapsed"] for r in runs[n]]
        mid = runs[n][int(np.argsort(elapsed)[len(elapsed) // 2])]
        figures[str(n)] = {
            "queries_per_s": len(ids) / mid["elapsed"],
            "queries_per_s_all_rounds": [len(ids) / e for e in elapsed],
            "trie_share": mid["trie_s"] / mid["elapsed"], "steps": mid["steps"],
            "ms_per_step": 1000 * mid["elapsed"] / max(mid["steps"], 1),
            "nodes": tries[n].num_nodes,
        }
        print(n, figures[str(n)], flush=True)
    qps = [f["queries_per_s"] for f in figures.values()]
    step = [f["ms_per_step"] for f in figures.values()]
    summary = {"per_size": figures, "max_over_min_qps": max(qps) / min(qps),
               "max_over_min_ms_per_step": max(step) / min(step),
               "max_trie_share": max(f["trie_share"] for f in figures.values())}
    print({k: v for k, v in summary.items() if k != "per_size"}, flush=True)
    write_record("bench_decoding_scaling", dataset="synthetic names", split=None,
                 model_size=args.size, figures=summary,
                 extra={"vocab": args.vocab, "queries": args.num_queries, "repeats": args.repeats,
                        "name_tokens": [lo, hi], "batch_size": args.batch_size,
                        "threads": torch.get_num_threads()})
    return summary


def run_build(args) -> dict:
    figures = {}
    for n in args.entities:
        names = synthetic_names(n, args.vocab, seed=2, min_len=2, max_len=10)
        tracemalloc.start()
        t0 = time.perf_counter()
        trie = EntityTrie.from_sequences(names, vocab_size=args.vocab, eos_token_id=1, pad_token_id=0)
        elapsed = time.perf_counter() - t0
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        figures[str(n)] = {"build_s": elapsed, "peak_build_memory_gb": peak / 2**30,
                           "trie_memory_gb": trie.nbytes() / 2**30, "nodes": trie.num_nodes,
                           "input_matrix_gb": names.nbytes / 2**30}
        print(n, figures[str(n)], flush=True)
    write_record("bench_decoding_build", dataset="synthetic names", split=None, model_size=None,
                 figures=figures, extra={"vocab": args.vocab})
    return figures


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    sub = parser.add_subparsers(dest="part", required=True)
    r = sub.add_parser("ranking", help="ours vs generate + prefix_allowed_tokens_fn")
    r.add_argument("--sizes", nargs="*", default=["tiny", "small"],
                   help="randomly initialised model shapes (none: only --model-dir)")
    r.add_argument("--queries", nargs="*", type=int, default=None,
                   help="queries per shape (default: 128 for the first, 32 for the others)")
    r.add_argument("--batch-size", nargs="+", type=int, default=[32],
                   help="queries per batch; several values run every shape at each (figures keyed "
                        "'shape@batch'); 32 is kgt5mm evaluate's default")
    r.add_argument("--model-dir", nargs="*", default=[], metavar="DIR",
                   help="trained model folders (kgt5mm save_pretrained) to rank with their own "
                        "tokenizer, names, context settings and dataset's test queries")
    r.add_argument("--model-queries", nargs="*", type=int, default=None,
                   help="test queries per --model-dir (default: 64 each)")
    r.add_argument("--data-dir", default=None, help="where the model folders' datasets live "
                   "(default: their saved data_dir / the embedded WN9-IMG)")
    r.add_argument("--vocab", type=int, default=8000, help="SentencePiece vocabulary size")
    r.add_argument("--budget", type=int, default=64, help="context token budget")
    r.add_argument("--repeats", type=int, default=3,
                   help="interleaved timing rounds of the four methods; medians are reported")
    r.set_defaults(func=run_ranking)
    s = sub.add_parser("scaling", help="queries/s and trie share vs number of entity names")
    s.add_argument("--entities", nargs="+", type=int, default=[1000, 10000, 100000, 1000000])
    s.add_argument("--size", default="tiny", help="model shape")
    s.add_argument("--vocab", type=int, default=8000, help="vocabulary size")
    s.add_argument("--num-queries", type=int, default=128, help="queries per size")
    s.add_argument("--batch-size", type=int, default=32, help="queries per batch")
    s.add_argument("--source-len", type=int, default=64, help="source tokens per query")
    s.add_argument("--name-length", type=int, default=None,
                   help="every name has exactly this many tokens (+ EOS): equal decoder work per size")
    s.add_argument("--min-length", type=int, default=1, help="shortest random name (tokens)")
    s.add_argument("--max-length", type=int, default=6, help="longest random name (tokens)")
    s.add_argument("--repeats", type=int, default=3,
                   help="interleaved timing rounds over all sizes; the median round is reported")
    s.set_defaults(func=run_scaling)
    b = sub.add_parser("build", help="trie build time and memory")
    b.add_argument("--entities", nargs="+", type=int, default=[5_000_000])
    b.add_argument("--vocab", type=int, default=32000, help="vocabulary size")
    b.set_defaults(func=run_build)
    args = parser.parse_args(argv)
    if args.part == "ranking":
        if args.queries is None:
            args.queries = [128, *[32] * (len(args.sizes) - 1)][:len(args.sizes)]
        if args.model_queries is None:
            args.model_queries = [64] * len(args.model_dir)
        if len(args.model_queries) != len(args.model_dir) or len(args.queries) != len(args.sizes):
            parser.error("give one --queries value per --sizes and one --model-queries per --model-dir")
    if args.threads:
        torch.set_num_threads(args.threads)
    args.func(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())

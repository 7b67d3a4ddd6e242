"""Filtered link-prediction evaluation of a seq2seq model (beam or exhaustive), distributed.

::

    from kgt5mm.evaluation import EvalConfig, evaluate
    result = evaluate(model, tokenizer, kg, builder, split="test",
                      config=EvalConfig(num_beams=10, top_k=10))
    result.metrics["both.realistic.mrr"]
    result.save("eval_out")     # metrics.json, per_relation.tsv, per_relation_mrr.png

The pipeline per batch of queries: context strings (``builder.build_many``) -> source ids ->
either trie-constrained beam search (top-k entities and scores) or exhaustive teacher-forced
scores of all entities -> filtered ranks (:mod:`kgt5mm.evaluation.ranks`) -> metrics
(:mod:`kgt5mm.evaluation.metrics`). With an ``accelerate.Accelerator`` each process decodes a
disjoint contiguous shard of the queries; the shards are gathered with their query indices
(``gather_object``), so no query is lost or counted twice whatever the shard sizes, and every
process returns the same result.

Candidate views (``EvalConfig.candidate_views``): each answer candidate of a query (a neighbour
whose relation predicts the query relation, :meth:`ContextBuilder.answer_candidates`) is also
scored by teacher forcing on its own view, the context with the other candidates hidden. An
entity's score is the best of its score on the full context and, for a candidate, on its view
(:func:`merge_candidate_scores`). Beam lists stay sound: a candidate whose view score is below
the last score of a full beam list is left unranked, as are the entities the beam did not reach.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from kgt5mm.decoding.beam import (
    constrained_beam_search,
    score_all_entities,
    score_paired_entities,
    unwrap_seq2seq,
)
from kgt5mm.decoding.trie import EntityTrie
from kgt5mm.errors import ConfigError, KGT5MMError
from kgt5mm.evaluation.metrics import HITS_AT, compute_metrics, hits_at_k, mean_reciprocal_rank
from kgt5mm.evaluation.ranks import Ranks, filter_mask, rank_from_scores, ranks_from_beams
from kgt5mm.files import atomic_path, atomic_write_text

__all__ = [
    "EvalConfig",
    "EvaluationResult",
    "Predictions",
    "answer_in_context",
    "build_trie",
    "evaluate",
    "merge_candidate_scores",
    "plotted_relations",
    "predict_candidates",
    "select_queries",
]

logger = logging.getLogger(__name__)

METRICS_FILE = "metrics.json"
PER_RELATION_FILE = "per_relation.tsv"
CONTEXT_BREAKDOWN_FILE = "context_breakdown.tsv"
PER_RELATION_PLOT = "per_relation_mrr.png"


def _help(text: str) -> dict[str, str]:
    return {"help": text}


@dataclass
class EvalConfig:
    """How link prediction is evaluated (beam or exhaustive ranking, batching, subsets)."""

    num_beams: int = field(default=10, metadata=_help("open hypotheses per query in beam search"))
    top_k: int = field(
        default=10,
        metadata=_help("finished candidates kept per query and ranked (>= 10 for Hits@10)"),
    )
    batch_size: int = field(default=32, metadata=_help("queries decoded together"))
    filter_aware_beams: bool = field(
        default=False,
        metadata=_help(
            "widen each query's beam and top_k by its number of other known answers (the ones "
            "filtered ranking removes), up to max_beams, so that top_k candidates survive filtering"
        ),
    )
    max_beams: int = field(
        default=64, metadata=_help("largest beam of a query widened by filter_aware_beams")
    )
    exhaustive: bool = field(
        default=False,
        metadata=_help("score every entity by teacher forcing (exact; small graphs only)"),
    )
    exhaustive_rows: int = field(
        default=2048, metadata=_help("decoder rows per forward pass in exhaustive mode")
    )
    max_queries: int | None = field(
        default=None,
        metadata=_help("evaluate a seeded random subset of this many queries (None: all)"),
    )
    seed: int = field(default=0, metadata=_help("seed of the max_queries subset"))
    max_source_length: int | None = field(
        default=None, metadata=_help("truncate sources to this many tokens (None: no truncation)")
    )
    candidate_views: int = field(
        default=0,
        metadata=_help(
            "also score each answer candidate of a query (up to this many) by teacher forcing "
            "on its own view, the context listing that candidate alone as training contexts "
            "under context.hide_other_candidates do; a candidate's score is its best over the "
            "full context and its view (ContextBuilder.build_candidate_views). 0 = off"
        ),
    )

    def validate(self, prefix: str = "eval") -> None:
        """Raise :class:`ConfigError` on the first invalid field."""
        for name in ("num_beams", "top_k", "batch_size", "exhaustive_rows", "max_beams"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ConfigError(f"{prefix}.{name} must be a positive integer, got {value!r}")
        if self.max_queries is not None and (not isinstance(self.max_queries, int) or self.max_queries < 1):
            raise ConfigError(f"{prefix}.max_queries must be a positive integer or null, got {self.max_queries!r}")
        if self.max_source_length is not None and self.max_source_length < 1:
            raise ConfigError(f"{prefix}.max_source_length must be >= 1 or null, got {self.max_source_length!r}")
        if not isinstance(self.candidate_views, int) or self.candidate_views < 0:
            raise ConfigError(f"{prefix}.candidate_views must be an integer >= 0, got {self.candidate_views!r}")

    def to_dict(self) -> dict[str, Any]:
        """Plain dictionary of the fields."""
        return asdict(self)

    def with_source_limit(self, limit: int | None) -> EvalConfig:
        """This config with sources cut at ``limit`` (the training length, so a model reads the
        sources it was trained on) unless ``max_source_length`` names its own."""
        return self if self.max_source_length is not None else replace(self, max_source_length=limit)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EvalConfig:
        """Inverse of :meth:`to_dict`; unknown keys raise :class:`ConfigError`."""
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ConfigError(f"unknown eval config keys {unknown}; known: {sorted(names)}")
        return cls(**data)


@dataclass
class Predictions:
    """Top-k candidates of ``n`` queries.

    :ivar queries: ``(n, 3)`` int64 ``(entity, query_relation, answer)`` (answer ``-1`` if unknown)
    :ivar entities: ``(n, k)`` int64 candidate ids best first, ``-1`` for empty slots; with
        candidate views a beam list may hold more than ``top_k`` entries, so ``k`` can exceed
        it (:func:`merge_candidate_scores`)
    :ivar scores: ``(n, k)`` float32 summed token log-probabilities
    :ivar full_scores: ``(n, E)`` float32 in exhaustive mode, else ``None``
    """

    queries: np.ndarray
    entities: np.ndarray
    scores: np.ndarray
    full_scores: np.ndarray | None = None


@dataclass
class EvaluationResult:
    """Ranks, metrics and per-relation breakdown of one evaluation run."""

    dataset: str
    split: str
    queries: np.ndarray
    ranks: Ranks
    metrics: dict[str, float]
    num_relations: int
    relation_names: list[str]
    config: EvalConfig
    predictions: Predictions | None = None

    @property
    def in_beam_share(self) -> float:
        """Share of targets found inside the filtered beam list (both sides)."""
        return self.metrics["both.in_beam_share"]

    def per_relation(self, rank_type: str = "realistic", *, where: np.ndarray | None = None,
                     overall: bool = False) -> list[dict[str, Any]]:
        """One row per (relation, side) with queries: counts, MRR, Hits@k, in-beam share.

        :param where: boolean mask over the queries: only those count (e.g. answer in context)
        :param overall: also add rows over all relations first (``relation`` -1, name "all")
        """
        rows = []
        q = self.ranks.query_relations
        base = q % self.num_relations
        values = self.ranks.get(rank_type)
        keep = np.ones(len(q), dtype=bool) if where is None else np.asarray(where, dtype=bool)
        if keep.shape != q.shape:
            raise KGT5MMError(f"where has shape {keep.shape}, expected one flag per query {q.shape}")
        for r in ([-1] if overall else []) + list(range(self.num_relations)):
            for side in ("tail", "head", "both"):
                sel = keep & ((base == r) if r >= 0 else True)
                if side == "tail":
                    sel &= q < self.num_relations
                elif side == "head":
                    sel &= q >= self.num_relations
                if not sel.any():
                    continue
                row = {"relation": r, "name": self.relation_names[r] if r >= 0 else "all", "side": side,
                       "num_queries": int(sel.sum()), "mrr": mean_reciprocal_rank(values[sel])}
                for k in HITS_AT:
                    row[f"hits_at_{k}"] = hits_at_k(values[sel], k)
                row["in_beam_share"] = float(self.ranks.in_beam[sel].mean())
                rows.append(row)
        return rows

    def context_breakdown(self, in_context: np.ndarray, rank_type: str = "realistic"
                          ) -> list[dict[str, Any]]:
        """Per-relation rows (all relations first) split by whether the answer was in context.

        :param in_context: one flag per query, e.g. from :func:`answer_in_context`
        :returns: :meth:`per_relation` rows with an ``answer_in_context`` field, both groups
        """
        flags = np.asarray(in_context, dtype=bool)
        rows = []
        for flag in (True, False):
            for row in self.per_relation(rank_type, where=flags == flag, overall=True):
                rows.append({**row, "answer_in_context": flag})
        rows.sort(key=lambda row: (row["relation"], ("tail", "head", "both").index(row["side"]),
                                   not row["answer_in_context"]))
        return rows

    def per_relation_table(self, *, fmt: str = "tsv", rank_type: str = "realistic",
                           rows: list[dict[str, Any]] | None = None) -> str:
        """The per-relation breakdown as TSV (``fmt="tsv"``) or a Markdown table (``"md"``).

        :param rows: rows to render instead of :meth:`per_relation` (e.g. :meth:`context_breakdown`)
        """
        rows = self.per_relation(rank_type) if rows is None else rows
        extra = ["answer_in_context"] if rows and "answer_in_context" in rows[0] else []
        cols = ["relation", "name", "side", *extra, "num_queries", "mrr",
                *(f"hits_at_{k}" for k in HITS_AT), "in_beam_share"]
        def cell(v):
            return f"{v:.4f}" if isinstance(v, float) else str(v)
        lines = [[c for c in cols]] + [[cell(row[c]) for c in cols] for row in rows]
        if fmt == "tsv":
            return "\n".join("\t".join(x.replace("\t", " ") for x in line) for line in lines) + "\n"
        if fmt == "md":
            out = ["| " + " | ".join(lines[0]) + " |", "|" + "---|" * len(cols)]
            out += ["| " + " | ".join(x.replace("|", "\\|") for x in line) + " |" for line in lines[1:]]
            return "\n".join(out) + "\n"
        raise KGT5MMError(f"unknown table format {fmt!r}; use 'tsv' or 'md'")

    def to_dict(self, *, include_ranks: bool = False) -> dict[str, Any]:
        """JSON-serialisable summary (metrics, config, per-relation rows, optional ranks)."""
        def clean(v):
            return None if isinstance(v, float) and math.isnan(v) else v
        out = {
            "dataset": self.dataset, "split": self.split,
            "metrics": {k: clean(v) for k, v in self.metrics.items()},
            "eval_config": self.config.to_dict(),
            "per_relation": [{k: clean(v) for k, v in row.items()} for row in self.per_relation()],
        }
        if include_ranks:
            out["ranks"] = self.ranks.to_dict()
            out["queries"] = self.queries.tolist()
        return out

    def to_json(self, path: str | Path | None = None, *, include_ranks: bool = False) -> str:
        """The summary as JSON text; also written atomically to ``path`` when given."""
        text = json.dumps(self.to_dict(include_ranks=include_ranks), indent=2) + "\n"
        if path is not None:
            atomic_write_text(path, text)
        return text

    def plot_per_relation(self, path: str | Path, *, rank_type: str = "realistic",
                          max_relations: int = 40) -> Path:
        """Bar chart of per-relation MRR (tail, head, both) saved as PNG (atomic).

        Up to ``max_relations`` relations are shown in id order. A split with more (MKG-W has
        169) shows its ``max_relations`` most frequent ones, most frequent first, each labelled
        with its query count; ``per_relation.tsv`` always has every relation.
        """
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        rows = self.per_relation(rank_type)
        relations, truncated = plotted_relations(rows, max_relations)
        counts = {row["relation"]: row["num_queries"] for row in rows if row["side"] == "both"}
        # URI ids (Wikidata's http://www.wikidata.org/entity/P161) are labelled by their last part
        names = [self.relation_names[r].rstrip("/").rsplit("/", 1)[-1] for r in relations]
        if truncated:
            names = [f"{name} ({counts[r]})" for name, r in zip(names, relations, strict=True)]
        fig, ax = plt.subplots(figsize=(max(6.0, 0.5 * len(relations) + 2), 4.5))
        width = 0.27
        for j, side in enumerate(("tail", "head", "both")):
            values = {row["relation"]: row["mrr"] for row in rows if row["side"] == side}
            xs = [i + (j - 1) * width for i in range(len(relations))]
            ax.bar(xs, [values.get(r, 0.0) for r in relations], width=width, label=side)
        ax.set_xticks(range(len(relations)))
        ax.set_xticklabels(names, rotation=60, ha="right", fontsize=7)
        ax.set_ylim(0, 1)
        ax.set_ylabel(f"filtered MRR ({rank_type})")
        title = (f"{self.dataset} {self.split}: per-relation MRR "
                 f"(both {self.metrics['both.' + rank_type + '.mrr']:.3f})")
        if truncated:
            title += f"\nthe {len(relations)} most frequent of {len(counts)} relations (queries)"
        ax.set_title(title, fontsize=10)
        ax.legend()
        fig.tight_layout()
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format="png", dpi=120)
        plt.close(fig)
        return Path(path)

    def save(self, output_dir: str | Path, *, in_context: np.ndarray | None = None) -> dict[str, Path]:
        """Write ``metrics.json`` (with ranks), ``per_relation.tsv`` and ``per_relation_mrr.png``.

        With ``in_context`` (one flag per query, see :func:`answer_in_context`) also
        ``context_breakdown.tsv`` (:meth:`context_breakdown`) and the flags in ``metrics.json``.
        """
        output_dir = Path(output_dir)
        output_dir.mkdir(parents=True, exist_ok=True)
        paths = {"metrics": output_dir / METRICS_FILE, "per_relation": output_dir / PER_RELATION_FILE,
                 "plot": output_dir / PER_RELATION_PLOT}
        data = self.to_dict(include_ranks=True)
        if in_context is not None:
            paths["context_breakdown"] = output_dir / CONTEXT_BREAKDOWN_FILE
            atomic_write_text(paths["context_breakdown"],
                              self.per_relation_table(rows=self.context_breakdown(in_context)))
            data["answer_in_context"] = np.asarray(in_context, dtype=bool).tolist()
        atomic_write_text(paths["metrics"], json.dumps(data, indent=2) + "\n")
        atomic_write_text(paths["per_relation"], self.per_relation_table(fmt="tsv"))
        self.plot_per_relation(paths["plot"])
        return paths


def answer_in_context(builder, queries: np.ndarray) -> np.ndarray:
    """Whether each query's answer is among the neighbour edges of its evaluation context.

    :param builder: a :class:`~kgt5mm.context.ContextBuilder` (``select`` reports the included
        neighbours), the one the model was evaluated with
    :param queries: ``(n, 3)`` ``(entity, query_relation, answer)`` rows
    :returns: ``(n,)`` bool array; a seq2seq model that copies from its context can only reach
        the queries where it is True without recalling the answer from its weights
    """
    queries = np.asarray(queries, dtype=np.int64).reshape(-1, 3)
    return np.array([int(a) in builder.select(int(e), int(q)).neighbours for e, q, a in queries.tolist()],
                    dtype=bool)


def plotted_relations(rows: list[dict[str, Any]], max_relations: int) -> tuple[list[int], bool]:
    """Relations a per-relation chart shows, and whether some were left out.

    ``rows`` are :meth:`EvaluationResult.per_relation` rows. All relations with queries, in id order,
    when there are at most ``max_relations``; else the ``max_relations`` with the most queries,
    most first (ties by id).
    """
    if max_relations < 1:
        raise KGT5MMError(f"max_relations must be >= 1, got {max_relations}")
    counts = {row["relation"]: row["num_queries"] for row in rows if row["side"] == "both"}
    if len(counts) <= max_relations:
        return sorted(counts), False
    ranked = sorted(counts, key=lambda r: (-counts[r], r))
    return ranked[:max_relations], True


def build_trie(model: torch.nn.Module, tokenizer, names: list[str]) -> EntityTrie:
    """Entity trie of ``names`` with ``encode_targets`` ids, sized to the model's logits."""
    from kgt5mm.modeling import encode_targets

    vocab = unwrap_seq2seq(model).get_output_embeddings().weight.shape[0]
    return EntityTrie.from_sequences(
        encode_targets(tokenizer, names), vocab_size=vocab, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id, names=names,
    )


def select_queries(queries: np.ndarray, max_queries: int | None, seed: int) -> np.ndarray:
    """A seeded random subset of ``max_queries`` rows (kept in their original order)."""
    if max_queries is None or max_queries >= len(queries):
        return queries
    rng = np.random.default_rng(seed)
    index = np.sort(rng.choice(len(queries), size=max_queries, replace=False))
    return queries[index]


def _progress(total: int, accelerator, desc: str):
    from tqdm.auto import tqdm

    main = accelerator is None or accelerator.is_main_process
    return tqdm(total=total, desc=desc, disable=not main or total == 0, leave=False)


def other_known_answers(kg, queries: np.ndarray) -> np.ndarray:
    """``(n,)`` number of known answers of each query ``(entity, query_relation, answer)`` over
    train/valid/test, not counting the query's own answer (all of them where it is ``-1``)."""
    fi = kg.filter_index
    queries = np.asarray(queries, dtype=np.int64).reshape(-1, 3)
    entity, relation, answer = queries[:, 0], queries[:, 1], queries[:, 2]
    own = (answer >= 0) & fi.is_known(entity, relation, np.maximum(answer, 0))
    return fi.num_answers(entity, relation) - own


def query_beam_widths(kg, queries: np.ndarray, config: EvalConfig) -> tuple[np.ndarray, np.ndarray]:
    """Per-query ``(num_beams, top_k)``: the config's, or widened by ``filter_aware_beams``.

    With ``filter_aware_beams`` a query with ``m`` other known answers gets ``m`` more beams and
    ``m`` more returned candidates (at most ``max_beams`` beams): filtering removes up to ``m``
    of them, so ``top_k`` ranked candidates remain, as with an answer-free query.
    """
    n = len(queries)
    beams = np.full(n, config.num_beams, dtype=np.int64)
    if config.filter_aware_beams and n:
        extra = other_known_answers(kg, queries)
        beams = np.minimum(beams + extra, max(config.max_beams, config.num_beams))
    topk = config.top_k + (beams - config.num_beams)
    return beams, topk


def predict_candidates(
    model: torch.nn.Module,
    tokenizer,
    kg,
    builder,
    queries: np.ndarray,
    *,
    config: EvalConfig | None = None,
    trie: EntityTrie | None = None,
    accelerator=None,
) -> Predictions:
    """Top-``config.top_k`` candidates (unfiltered) of every query, sharded over processes.

    :param queries: ``(n, 3)`` int64 ``(entity, query_relation, answer)``; the answer
        column is not used (it may be ``-1``)
    :param builder: object with ``build_many(queries) -> list[str]`` (the source strings), and
        ``build_candidate_views(queries, max_views) -> (sources, owner, candidates)`` when
        ``config.candidate_views`` (see the module docstring)
    :returns: :class:`Predictions` for all ``n`` queries, in input order, on every process
    """
    config = config or EvalConfig()
    config.validate()
    queries = np.asarray(queries, dtype=np.int64).reshape(-1, 3)
    inner = unwrap_seq2seq(accelerator.unwrap_model(model) if accelerator is not None else model)
    trie = trie or build_trie(inner, tokenizer, list(kg.entity_names))
    device = accelerator.device if accelerator is not None else next(inner.parameters()).device
    world = accelerator.num_processes if accelerator is not None else 1
    rank = accelerator.process_index if accelerator is not None else 0
    shard = np.array_split(np.arange(len(queries)), world)[rank]
    beams_q, topk_q = query_beam_widths(kg, queries, config)
    k = int(topk_q.max()) if len(topk_q) else config.top_k
    if config.candidate_views and not hasattr(builder, "build_candidate_views"):
        raise ConfigError(f"eval.candidate_views needs a builder with build_candidate_views(); "
                          f"{type(builder).__name__} has none")
    ent_out = np.full((len(shard), k), -1, dtype=np.int64)
    score_out = np.full((len(shard), k), -np.inf, dtype=np.float32)
    full_out = np.zeros((len(shard), kg.num_entities), dtype=np.float32) if config.exhaustive else None
    was_training = inner.training
    inner.eval()
    try:
        sources = builder.build_many(queries[shard]) if len(shard) else []
        order = np.argsort([len(s) for s in sources], kind="stable")  # less padding per batch
        bar = _progress(len(shard), accelerator, "decoding" if not config.exhaustive else "scoring")
        for ids, mask, idx in _batches(tokenizer, sources, order, config, device):
            if config.exhaustive:
                scores = score_all_entities(inner, trie, input_ids=ids, attention_mask=mask,
                                            max_rows=config.exhaustive_rows)
                top_s, top_e = scores.topk(min(k, scores.shape[1]), dim=1)
                full_out[idx] = scores.cpu().numpy()
            else:
                sel = shard[idx]
                result = constrained_beam_search(
                    inner, trie, input_ids=ids, attention_mask=mask,
                    num_beams=torch.from_numpy(beams_q[sel]).to(device),
                    top_k=torch.from_numpy(topk_q[sel]).to(device))
                top_s, top_e = result.scores, result.entities
            ent_out[idx, : top_e.shape[1]] = top_e.cpu().numpy()
            score_out[idx, : top_s.shape[1]] = top_s.float().cpu().numpy()
            bar.update(len(idx))
        bar.close()
        if config.candidate_views and len(shard):
            views, owner, candidates = builder.build_candidate_views(queries[shard],
                                                                     config.candidate_views)
            view_scores = _known_view_scores(views, owner, candidates, sources, ent_out, score_out,
                                            full_out)
            todo = np.flatnonzero(np.isnan(view_scores))
            order = todo[np.argsort([len(views[i]) for i in todo], kind="stable")]
            bar = _progress(len(todo), accelerator, "candidate views")
            for ids, mask, idx in _batches(tokenizer, views, order, config, device):
                view_scores[idx] = score_paired_entities(
                    inner, trie, input_ids=ids, attention_mask=mask,
                    entities=torch.from_numpy(candidates[idx]).to(device)).float().cpu().numpy()
                bar.update(len(idx))
            bar.close()
            ent_out, score_out, full_out = merge_candidate_scores(
                ent_out, score_out, full_out, owner, candidates, view_scores, topk_q[shard])
    finally:
        inner.train(was_training)
    if world > 1:
        from accelerate.utils import gather_object

        parts = gather_object([(shard, ent_out, score_out, full_out)])
        index = np.concatenate([p[0] for p in parts])
        if len(index) != len(queries) or len(np.unique(index)) != len(queries):
            raise KGT5MMError(f"gathered {len(index)} predictions for {len(queries)} queries")
        back = np.argsort(index)
        # candidate views make each shard's lists as wide as its own longest one: pad to the widest
        width = max(p[1].shape[1] for p in parts)
        ent_out = np.concatenate([_widen(p[1], width, -1) for p in parts])[back]
        score_out = np.concatenate([_widen(p[2], width, -np.inf) for p in parts])[back]
        if config.exhaustive:
            full_out = np.concatenate([p[3] for p in parts])[back]
    return Predictions(queries=queries, entities=ent_out, scores=score_out, full_scores=full_out)


def _known_view_scores(views: list[str], owner: np.ndarray, candidates: np.ndarray, sources: list[str],
                      entities: np.ndarray, scores: np.ndarray, full_scores: np.ndarray | None
                      ) -> np.ndarray:
    """Scores of candidate views that decoding the full contexts already gave, NaN elsewhere.

    A query with one candidate has its full context as that candidate's view. Its exact score
    there is already known: in ``full_scores`` (exhaustive), or in the beam list when the beam
    reached the candidate (the beam and the forced scorer use the same log-probabilities). Only
    the other views need a teacher-forced pass (a third of WN9-IMG's are such repeats).

    :param views: view sources; :param owner: each view's row in ``sources`` (full contexts);
        :param candidates: each view's candidate; :param entities: ``(n, k)`` / :param scores:
        the beam lists of the full contexts; :param full_scores: ``(n, E)`` or ``None``
    """
    known = np.full(len(views), np.nan, dtype=np.float32)
    for v, (i, c) in enumerate(zip(owner.tolist(), candidates.tolist(), strict=True)):
        if views[v] != sources[i]:
            continue
        if full_scores is not None:
            known[v] = full_scores[i, c]
        else:
            hit = np.flatnonzero(entities[i] == c)
            if len(hit):
                known[v] = scores[i, hit[0]]
    return known


def _widen(rows: np.ndarray, width: int, fill: float) -> np.ndarray:
    """``rows`` padded on the right with ``fill`` to ``width`` columns."""
    return np.pad(rows, ((0, 0), (0, width - rows.shape[1])), constant_values=fill)


def _batches(tokenizer, sources: list[str], order: np.ndarray, config: EvalConfig, device):
    """``(input_ids, attention_mask, rows)`` per batch of ``config.batch_size`` sources in ``order``."""
    for start in range(0, len(order), config.batch_size):
        idx = order[start:start + config.batch_size]
        enc = tokenizer(
            [sources[i] for i in idx], padding=True, return_tensors="pt",
            truncation=config.max_source_length is not None, max_length=config.max_source_length,
        )
        yield enc["input_ids"].to(device), enc["attention_mask"].to(device), idx


def merge_candidate_scores(entities: np.ndarray, scores: np.ndarray, full_scores: np.ndarray | None,
                           owner: np.ndarray, candidates: np.ndarray, candidate_scores: np.ndarray,
                           top_k: np.ndarray
                           ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Add candidate-view scores to per-query predictions: each entity keeps its best score.

    :param entities: ``(n, k)`` beam candidates of each query's full context, best first
        (``-1`` = empty slot); :param scores: ``(n, k)`` their scores
    :param full_scores: ``(n, E)`` exhaustive scores of the full contexts, or ``None``
    :param owner: ``(V,)`` query row of each view; :param candidates: ``(V,)`` the entity each
        view was scored for; :param candidate_scores: ``(V,)`` its score on that view
    :param top_k: ``(n,)`` candidates kept per query
    :returns: ``(entities, scores, full_scores)``, re-sorted by score (ties in order of first
        appearance, beam entries first). Exhaustive rows take the maximum entry-wise (lists of
        width ``k``). A beam list grows by the candidates whose view score is at least its last
        score (any score when the beam did not fill its ``top_k`` slots): the entities the beam
        did not reach are taken to score at most that much, so these rank soundly above them;
        a lower view score could trail such entities and is left unranked, as they are. Beam
        lists are ``k + (most views of a query)`` wide.
    """
    owner = np.asarray(owner, dtype=np.int64)
    candidates = np.asarray(candidates, dtype=np.int64)
    candidate_scores = np.asarray(candidate_scores, dtype=np.float32)
    n, k = entities.shape
    if not (len(owner) == len(candidates) == len(candidate_scores)):
        raise KGT5MMError(f"{len(owner)} view owners, {len(candidates)} candidates and "
                          f"{len(candidate_scores)} scores")
    if len(owner) and (owner.min() < 0 or owner.max() >= n or np.any(np.diff(owner) < 0)):
        raise KGT5MMError(f"view owners must be non-decreasing query rows in [0, {n})")
    if full_scores is not None:
        merged = full_scores.copy()
        np.maximum.at(merged, (owner, candidates), candidate_scores)
        width = min(k, merged.shape[1])
        top_s, top_e = torch.from_numpy(merged).topk(width, dim=1)
        ent = np.full((n, k), -1, dtype=np.int64)
        sco = np.full((n, k), -np.inf, dtype=np.float32)
        ent[:, :width], sco[:, :width] = top_e.numpy(), top_s.numpy()
        return ent, sco, merged
    starts = np.searchsorted(owner, np.arange(n))
    ends = np.searchsorted(owner, np.arange(n), side="right")
    width = k + int((ends - starts).max(initial=0))
    ent = np.full((n, width), -1, dtype=np.int64)
    sco = np.full((n, width), -np.inf, dtype=np.float32)
    ent[:, :k], sco[:, :k] = entities, scores
    for i in np.flatnonzero(ends > starts).tolist():
        last = int(top_k[i]) - 1
        cutoff = float(scores[i, last]) if entities[i, last] >= 0 else -np.inf
        best: dict[int, float] = {}
        for e, sc in zip(entities[i].tolist(), scores[i].tolist(), strict=True):
            if e >= 0 and (e not in best or sc > best[e]):
                best[e] = sc
        for e, sc in zip(candidates[starts[i]:ends[i]].tolist(),
                         candidate_scores[starts[i]:ends[i]].tolist(), strict=True):
            if sc >= cutoff and (e not in best or sc > best[e]):
                best[e] = sc
        ranked = sorted(best.items(), key=lambda item: -item[1])
        ent[i], sco[i] = -1, -np.inf
        ent[i, : len(ranked)] = [e for e, _ in ranked]
        sco[i, : len(ranked)] = [sc for _, sc in ranked]
    return ent, sco, None


def evaluate(
    model: torch.nn.Module,
    tokenizer,
    kg,
    builder,
    *,
    split: str = "valid",
    queries: np.ndarray | None = None,
    config: EvalConfig | None = None,
    accelerator=None,
    trie: EntityTrie | None = None,
) -> EvaluationResult:
    """Filtered ranking evaluation of ``model`` on ``kg``'s ``split`` (or given ``queries``).

    :param model: seq2seq model (plain, PEFT or Accelerate-prepared)
    :param tokenizer: its tokenizer (``encode_targets`` defines the entity targets)
    :param kg: the :class:`~kgt5mm.data.KnowledgeGraph` (names, relations, filter index)
    :param builder: context builder with ``build_many(queries) -> list[str]``
    :param split: split whose ``kg.queries(split)`` (tail then head queries) are evaluated
    :param queries: ``(n, 3)`` queries to evaluate instead of the split
    :param config: :class:`EvalConfig`; ``max_queries`` picks a seeded subset
    :param accelerator: shard the queries over its processes (all get the same result)
    :param trie: a prebuilt entity trie (built from ``kg.entity_names`` when ``None``)
    :returns: :class:`EvaluationResult` (ranks per query, flat metrics, per-relation rows)
    """
    config = config or EvalConfig()
    config.validate()
    if queries is None:
        queries = kg.queries(split)
    queries = select_queries(np.asarray(queries, dtype=np.int64).reshape(-1, 3),
                             config.max_queries, config.seed)
    if len(queries) and ((queries[:, 2] < 0) | (queries[:, 2] >= kg.num_entities)).any():
        raise KGT5MMError("evaluation queries need a known answer id in column 2")
    num_ent = kg.num_entities
    preds = predict_candidates(model, tokenizer, kg, builder, queries, config=config,
                               trie=trie, accelerator=accelerator)
    if not config.exhaustive and config.top_k < max(HITS_AT):
        logger.warning("eval.top_k %d < %d: Hits@%d is inexact, since a target outside a query's "
                       "%d listed entities is ranked as tied with all entities not listed",
                       config.top_k, max(HITS_AT), max(HITS_AT), config.top_k)
    fi = kg.filter_index
    if config.exhaustive:
        ranks = rank_from_scores(preds.full_scores, queries[:, 2],
                                 filter_mask(queries, fi, num_ent), query_relations=queries[:, 1])
    else:
        known = fi.is_known(queries[:, :1], queries[:, 1:2], preds.entities)
        num_known = other_known_answers(kg, queries)
        ranks = ranks_from_beams(preds.entities, preds.scores, queries[:, 2], num_entities=num_ent,
                                 known=known, num_known=num_known, query_relations=queries[:, 1])
    metrics = compute_metrics(ranks, num_relations=kg.num_relations)
    logger.info("%s %s: %d queries, MRR %.4f, Hits@1 %.4f, Hits@10 %.4f, in-beam %.3f",
                kg.name, split, len(queries), metrics["both.realistic.mrr"],
                metrics["both.realistic.hits_at_1"], metrics["both.realistic.hits_at_10"],
                metrics["both.in_beam_share"])
    return EvaluationResult(
        dataset=kg.name, split=split, queries=queries,
        ranks=ranks, metrics=metrics, num_relations=kg.num_relations,
        relation_names=list(kg.relation_ids), config=config, predictions=preds,
    )

"""Rank-based metrics as pure functions of ranks, and the flat metric dictionary.

Definitions (PyKEEN's, for any rank type):

- MRR (``mrr``) = mean over queries of ``1 / rank`` (PyKEEN: inverse harmonic mean rank)
- Hits@k (``hits_at_k``) = share of queries with ``rank <= k`` (a realistic rank of 10.5
  is not a hit at 10)
- mean rank (``mean_rank``) = arithmetic mean of the ranks

:func:`compute_metrics` produces the flat dictionary used everywhere in kgt5mm:
``f"{side}.{rank_type}.{metric}"`` for side in ``head``/``tail``/``both``, plus
``f"{side}.in_beam_share"`` and ``num_queries``. The "head" side holds the queries with
``q >= R`` (the answer is a head), the "tail" side those with ``q < R``.
"""

from __future__ import annotations

import math

import numpy as np

from kgt5mm.evaluation.ranks import RANK_TYPES, Ranks

__all__ = [
    "HITS_AT",
    "METRIC_NAMES",
    "SIDES",
    "compute_metrics",
    "hits_at_k",
    "mean_rank",
    "mean_reciprocal_rank",
    "side_mask",
]

#: The k of the reported Hits@k.
HITS_AT: tuple[int, ...] = (1, 3, 10)
#: Metric names in the flat keys.
METRIC_NAMES: tuple[str, ...] = ("mrr", *(f"hits_at_{k}" for k in HITS_AT), "mean_rank")
#: Sides in the flat keys.
SIDES: tuple[str, ...] = ("head", "tail", "both")


def mean_reciprocal_rank(ranks: np.ndarray) -> float:
    """Mean of ``1 / rank`` over ``(n,)`` ranks; NaN for no ranks."""
    ranks = np.asarray(ranks, dtype=np.float64)
    return float(np.mean(1.0 / ranks)) if len(ranks) else math.nan


def hits_at_k(ranks: np.ndarray, k: int) -> float:
    """Share of ``(n,)`` ranks that are ``<= k``; NaN for no ranks."""
    ranks = np.asarray(ranks, dtype=np.float64)
    return float(np.mean(ranks <= k)) if len(ranks) else math.nan


def mean_rank(ranks: np.ndarray) -> float:
    """Arithmetic mean of ``(n,)`` ranks; NaN for no ranks."""
    ranks = np.asarray(ranks, dtype=np.float64)
    return float(np.mean(ranks)) if len(ranks) else math.nan


def _metric(name: str, ranks: np.ndarray) -> float:
    if name == "mrr":
        return mean_reciprocal_rank(ranks)
    if name == "mean_rank":
        return mean_rank(ranks)
    return hits_at_k(ranks, int(name.rsplit("_", 1)[1]))


def side_mask(query_relations: np.ndarray, num_relations: int, side: str) -> np.ndarray:
    """``(n,)`` bool mask of the queries of one side (``head``: ``q >= R``; ``tail``: ``q < R``)."""
    q = np.asarray(query_relations)
    if side == "head":
        return q >= num_relations
    if side == "tail":
        return q < num_relations
    return np.ones(len(q), dtype=bool)


def compute_metrics(ranks: Ranks, *, num_relations: int) -> dict[str, float]:
    """The flat metric dictionary of :class:`Ranks` (keys in the module docstring).

    :param num_relations: ``R``; queries with ``q >= R`` count as head queries
    """
    out: dict[str, float] = {}
    for side in SIDES:
        part = ranks.subset(side_mask(ranks.query_relations, num_relations, side))
        for rank_type in RANK_TYPES:
            values = part.get(rank_type)
            for name in METRIC_NAMES:
                out[f"{side}.{rank_type}.{name}"] = _metric(name, values)
        out[f"{side}.in_beam_share"] = float(np.mean(part.in_beam)) if len(part) else math.nan
    out["num_queries"] = len(ranks)
    return out

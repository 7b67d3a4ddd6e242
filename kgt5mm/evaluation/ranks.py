"""Filtered ranks as data (optimistic, realistic, pessimistic), from beams or full score rows.

Definitions (as in PyKEEN), for a target with score ``s`` among the candidates left after
filtering (every *other* known answer of the query over train + valid + test is removed; the
target itself never is):

- optimistic rank  = 1 + #{candidates with score > s}
- pessimistic rank = #{candidates with score >= s}   (the target included)
- realistic rank   = (optimistic + pessimistic) / 2, the expected rank when ties are broken
  uniformly at random.

From a beam list (top-k entities with scores): the filtered beam keeps ``n`` entities. If the
target is among them it is ranked by score among those ``n`` (ties as above). If it is not,
nothing is known about its score except that it is below the kept ones, so it is tied with all
``U`` remaining unranked, non-filtered entities (``U`` counts the target): optimistic
``n + 1``, pessimistic ``n + U``, realistic their mean. ``in_beam`` records which case applied.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from kgt5mm.errors import KGT5MMError

__all__ = [
    "RANK_TYPES",
    "Ranks",
    "filter_mask",
    "rank_from_scores",
    "ranks_from_beams",
]

logger = logging.getLogger(__name__)

#: The three rank types, in the order metric keys list them.
RANK_TYPES: tuple[str, ...] = ("optimistic", "realistic", "pessimistic")


@dataclass
class Ranks:
    """Filtered ranks of ``n`` queries (all arrays have shape ``(n,)``).

    :ivar optimistic: best case over ties, float64
    :ivar realistic: expected rank under random tie-breaking, float64
    :ivar pessimistic: worst case over ties, float64
    :ivar in_beam: whether the target was inside the (filtered) beam list; always ``True``
        for ranks from full score rows
    :ivar query_relations: query relation id ``q`` of each query (``q >= R`` is a head query)
    """

    optimistic: np.ndarray
    realistic: np.ndarray
    pessimistic: np.ndarray
    in_beam: np.ndarray
    query_relations: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    def __post_init__(self) -> None:
        n = len(self.optimistic)
        if len(self.query_relations) == 0 and n:
            self.query_relations = np.full(n, -1, dtype=np.int64)
        for name in ("realistic", "pessimistic", "in_beam", "query_relations"):
            if len(getattr(self, name)) != n:
                raise KGT5MMError(f"Ranks.{name} has length {len(getattr(self, name))}, expected {n}")

    def __len__(self) -> int:
        return len(self.optimistic)

    def get(self, rank_type: str) -> np.ndarray:
        """The ``(n,)`` ranks of one type (``optimistic``, ``realistic`` or ``pessimistic``)."""
        if rank_type not in RANK_TYPES:
            raise KGT5MMError(f"unknown rank type {rank_type!r}; use one of {RANK_TYPES}")
        return getattr(self, rank_type)

    def subset(self, index: np.ndarray) -> Ranks:
        """Ranks of the queries selected by a boolean mask or an index array."""
        return Ranks(
            optimistic=self.optimistic[index], realistic=self.realistic[index],
            pessimistic=self.pessimistic[index], in_beam=self.in_beam[index],
            query_relations=self.query_relations[index],
        )

    @staticmethod
    def concatenate(parts: Sequence[Ranks]) -> Ranks:
        """Ranks of several query sets, in order."""
        def cat(name, dtype):
            arrays = [getattr(p, name) for p in parts]
            return np.concatenate(arrays).astype(dtype) if arrays else np.zeros(0, dtype)
        return Ranks(
            optimistic=cat("optimistic", np.float64), realistic=cat("realistic", np.float64),
            pessimistic=cat("pessimistic", np.float64), in_beam=cat("in_beam", bool),
            query_relations=cat("query_relations", np.int64),
        )

    def to_dict(self) -> dict[str, list]:
        """JSON-serialisable columns."""
        return {
            "optimistic": self.optimistic.tolist(), "realistic": self.realistic.tolist(),
            "pessimistic": self.pessimistic.tolist(), "in_beam": self.in_beam.tolist(),
            "query_relation": self.query_relations.tolist(),
        }


def filter_mask(queries: np.ndarray, filter_index, num_entities: int) -> np.ndarray:
    """``(n, E)`` bool mask of the entities to remove before ranking each query.

    True for every known answer of ``(entity, query_relation)`` (``filter_index.answers``)
    except the query's own answer.

    :param queries: ``(n, 3)`` int64 ``(entity, query_relation, answer)``
    :param filter_index: object with ``answers(entity, query_relation) -> sorted int64 array``
    """
    queries = np.asarray(queries, dtype=np.int64)
    mask = np.zeros((len(queries), num_entities), dtype=bool)
    for i, (entity, relation, answer) in enumerate(queries):
        known = filter_index.answers(int(entity), int(relation))
        mask[i, known] = True
        mask[i, answer] = False
    return mask


def _tie_ranks(better: np.ndarray, not_worse: np.ndarray) -> tuple[np.ndarray, ...]:
    optimistic = 1.0 + better
    pessimistic = not_worse.astype(np.float64)
    return optimistic, (optimistic + pessimistic) / 2.0, pessimistic


def rank_from_scores(
    scores: torch.Tensor | np.ndarray,
    targets: torch.Tensor | np.ndarray,
    filter: torch.Tensor | np.ndarray | None = None,
    *,
    query_relations: np.ndarray | None = None,
) -> Ranks:
    """Filtered ranks of ``targets`` from full score rows (higher score = better).

    :param scores: ``(n, E)`` score of every entity for every query
    :param targets: ``(n,)`` target entity ids
    :param filter: ``(n, E)`` bool, True = remove before ranking (see :func:`filter_mask`);
        the target column is never removed even if marked
    :param query_relations: ``(n,)`` query relation ids to carry in the result
    :returns: :class:`Ranks` with ``in_beam`` all True
    """
    scores_t = torch.as_tensor(scores).double()
    targets_t = torch.as_tensor(targets, dtype=torch.long, device=scores_t.device)
    n = scores_t.shape[0]
    target_scores = scores_t.gather(1, targets_t.unsqueeze(1))
    if torch.isnan(scores_t).any():
        raise KGT5MMError("scores contain NaN")
    keep = torch.ones_like(scores_t, dtype=torch.bool)
    if filter is not None:
        keep = ~torch.as_tensor(filter, dtype=torch.bool, device=scores_t.device)
        keep = keep.clone()
        keep[torch.arange(n, device=scores_t.device), targets_t] = True
    better = ((scores_t > target_scores) & keep).sum(1).cpu().numpy()
    not_worse = ((scores_t >= target_scores) & keep).sum(1).cpu().numpy()
    o, r, p = _tie_ranks(better, not_worse)
    qr = np.full(n, -1, np.int64) if query_relations is None else np.asarray(query_relations, np.int64)
    return Ranks(optimistic=o, realistic=r, pessimistic=p, in_beam=np.ones(n, dtype=bool),
                 query_relations=qr)


def ranks_from_beams(
    beam_entities: torch.Tensor | np.ndarray,
    beam_scores: torch.Tensor | np.ndarray,
    targets: torch.Tensor | np.ndarray,
    *,
    num_entities: int,
    known: np.ndarray | None = None,
    num_known: np.ndarray | None = None,
    query_relations: np.ndarray | None = None,
) -> Ranks:
    """Filtered ranks of ``targets`` from beam lists (see the module docstring).

    :param beam_entities: ``(n, k)`` entity ids best first, ``-1`` for empty slots
    :param beam_scores: ``(n, k)`` their scores
    :param targets: ``(n,)`` target entity ids
    :param num_entities: ``E``, the size of the candidate set
    :param known: ``(n, k)`` bool, True where the beam entity is another known answer of the
        query (to be filtered out); the target's own slot is ignored
    :param num_known: ``(n,)`` number of *other* known answers of each query over the whole
        entity set (the target excluded); needed for the fallback rank
    :returns: :class:`Ranks` with ``in_beam`` per query
    """
    ents = np.asarray(torch.as_tensor(beam_entities).cpu(), dtype=np.int64)
    scores = np.asarray(torch.as_tensor(beam_scores).double().cpu(), dtype=np.float64)
    targets = np.asarray(torch.as_tensor(targets).cpu(), dtype=np.int64)
    n = len(targets)
    is_target = ents == targets[:, None]
    valid = ents >= 0
    if np.isnan(scores[valid]).any():
        raise KGT5MMError("beam scores contain NaN (a diverged or overflowing model?)")
    other_known = np.zeros_like(valid) if known is None else (np.asarray(known, bool) & ~is_target)
    kept = valid & ~other_known
    n_kept = kept.sum(1)
    known_total = np.zeros(n, np.int64) if num_known is None else np.asarray(num_known, np.int64)
    if (known_total < (valid & other_known).sum(1)).any():
        raise KGT5MMError("num_known is smaller than the number of known answers inside the beam")
    in_beam = (is_target & kept).any(1)
    target_score = np.where(in_beam, (np.where(is_target, scores, -np.inf)).max(1), 0.0)
    better = (kept & (scores > target_score[:, None])).sum(1)
    not_worse = (kept & (scores >= target_score[:, None])).sum(1)
    o_in, r_in, p_in = _tie_ranks(better, not_worse)
    # Unranked candidates: neither kept in the beam nor another known answer (filtered ones
    # inside the beam were dropped from the kept list, those outside are never candidates).
    remaining = num_entities - n_kept - known_total  # counts the target
    if (remaining[~in_beam] < 1).any():
        raise KGT5MMError("inconsistent beam/filter counts: no unranked entity left for a target")
    o_out = n_kept + 1.0
    p_out = (n_kept + remaining).astype(np.float64)
    optimistic = np.where(in_beam, o_in, o_out)
    pessimistic = np.where(in_beam, p_in, p_out)
    realistic = (optimistic + pessimistic) / 2.0
    qr = np.full(n, -1, np.int64) if query_relations is None else np.asarray(query_relations, np.int64)
    return Ranks(optimistic=optimistic, realistic=realistic, pessimistic=pessimistic,
                 in_beam=in_beam, query_relations=qr)

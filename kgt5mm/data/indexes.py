"""Vectorized indexes over the triples of a knowledge graph.

* :class:`FilterIndex`: every known answer of every query ``(entity, query_relation)`` over
  train + valid + test, for filtered ranking.
* :class:`NeighbourIndex`: a compressed sparse row (CSR) adjacency over the *train* triples in
  both directions, for building contexts.

Both are built with numpy sorts only (no per-triple Python), so 20M triples take seconds.
Query relations follow the project convention: ``q < R`` is relation ``q`` read forwards
(query ``(h, q, ?)``, answer ``t``); ``q >= R`` is relation ``q - R`` read backwards (query
``(t, q, ?)``, answer ``h``).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np

__all__ = ["FilterIndex", "NeighbourIndex", "both_directions"]

logger = logging.getLogger(__name__)

_INT64_MAX = np.iinfo(np.int64).max


def both_directions(triples: np.ndarray, num_relations: int) -> np.ndarray:
    """All queries of ``triples``: tail queries ``(h, r, t)`` then head queries ``(t, r+R, h)``.

    :param triples: int64 ``(n, 3)`` as ``(head, relation, tail)``
    :returns: int64 ``(2n, 3)`` as ``(entity, query_relation, answer)``
    """
    triples = np.asarray(triples, dtype=np.int64).reshape(-1, 3)
    inverse = np.stack([triples[:, 2], triples[:, 1] + num_relations, triples[:, 0]], axis=1)
    return np.concatenate([triples, inverse], axis=0)


def _readonly(array: np.ndarray) -> np.ndarray:
    array.flags.writeable = False
    return array


class FilterIndex:
    """All known answers of each query ``(entity, query_relation)``.

    :param triples: int64 arrays ``(n_i, 3)`` ``(head, relation, tail)``, e.g. the train,
        valid and test splits; duplicates are fine
    :param num_entities: ``E``
    :param num_relations: ``R`` (query relations are ``0..2R-1``)

    :ivar keys: int64 ``(K,)`` sorted query keys ``entity * 2R + query_relation``
    :ivar indptr: int64 ``(K + 1,)``; answers of ``keys[k]`` are
        ``flat_answers[indptr[k]:indptr[k+1]]``
    :ivar flat_answers: int64 ``(A,)`` sorted within each query, no duplicates
    """

    def __init__(self, triples: Sequence[np.ndarray], *, num_entities: int, num_relations: int):
        self.num_entities = int(num_entities)
        self.num_relations = int(num_relations)
        q_count = 2 * self.num_relations
        parts = [np.asarray(t, dtype=np.int64).reshape(-1, 3) for t in triples]
        all_triples = np.concatenate(parts, axis=0) if parts else np.zeros((0, 3), np.int64)
        n = len(all_triples)
        entity = np.concatenate([all_triples[:, 0], all_triples[:, 2]])
        answer = np.concatenate([all_triples[:, 2], all_triples[:, 0]])
        key = entity * q_count
        del entity
        key[:n] += all_triples[:, 1]
        key[n:] += all_triples[:, 1] + self.num_relations
        del all_triples
        max_key = max(self.num_entities * q_count, 1)
        shift = max(self.num_entities - 1, 1).bit_length()
        if max_key < 1 << (62 - shift):
            # One sort of packed int64 (query key << shift | answer); shifts and masks
            # recover both fields (much faster than int64 division).
            combined = key << shift
            combined |= answer
            del key, answer
            combined.sort()
            keep = np.ones(len(combined), dtype=bool)
            keep[1:] = combined[1:] != combined[:-1]
            combined = combined[keep]
            del keep
            key = combined >> shift
            answer = combined & ((1 << shift) - 1)
            del combined
        else:  # pragma: no cover - needs E * 2R * 2^bits(E) > 2^62
            order = np.lexsort((answer, key))
            key, answer = key[order], answer[order]
            keep = np.ones(len(key), dtype=bool)
            keep[1:] = (key[1:] != key[:-1]) | (answer[1:] != answer[:-1])
            key, answer = key[keep], answer[keep]
        starts = (
            np.flatnonzero(np.r_[True, key[1:] != key[:-1]]) if len(key) else np.zeros(0, np.int64)
        )
        self.keys = _readonly(key[starts].astype(np.int64))
        self.indptr = _readonly(np.append(starts, len(key)).astype(np.int64))
        self.flat_answers = _readonly(answer.astype(np.int64, copy=False))

    def __len__(self) -> int:
        """Number of distinct known ``(entity, query_relation, answer)`` facts."""
        return len(self.flat_answers)

    def _slot(
        self, entity: np.ndarray, query_relation: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        key = entity * (2 * self.num_relations) + query_relation
        slot = np.searchsorted(self.keys, key)
        found = slot < len(self.keys)
        found[found] = self.keys[slot[found]] == key[found]
        return slot, found

    def answers(self, entity: int, query_relation: int) -> np.ndarray:
        """Sorted int64 array of all known answers of ``(entity, query_relation, ?)``."""
        slot, found = self._slot(
            np.asarray([entity], np.int64), np.asarray([query_relation], np.int64)
        )
        if not found[0]:
            return np.zeros(0, dtype=np.int64)
        k = int(slot[0])
        return self.flat_answers[self.indptr[k] : self.indptr[k + 1]]

    def num_answers(self, entities: np.ndarray, query_relations: np.ndarray) -> np.ndarray:
        """Number of known answers of each query ``(entity, query_relation, ?)`` (vectorized).

        ``entities`` and ``query_relations`` broadcast against each other; returns int64.
        """
        e, q = np.broadcast_arrays(np.asarray(entities, np.int64), np.asarray(query_relations, np.int64))
        slot, found = self._slot(e.ravel(), q.ravel())
        count = np.zeros(len(slot), dtype=np.int64)
        count[found] = self.indptr[slot[found] + 1] - self.indptr[slot[found]]
        return count.reshape(e.shape)

    def is_known(
        self, entities: np.ndarray, query_relations: np.ndarray, candidates: np.ndarray
    ) -> np.ndarray:
        """Whether each candidate is a known answer of its query (vectorized).

        The three arguments broadcast against each other, e.g. ``entities`` ``(n, 1)``,
        ``query_relations`` ``(n, 1)`` and ``candidates`` ``(n, k)`` give a bool ``(n, k)``.
        """
        e, q, c = np.broadcast_arrays(
            np.asarray(entities, np.int64),
            np.asarray(query_relations, np.int64),
            np.asarray(candidates, np.int64),
        )
        shape = e.shape
        e, q, c = e.ravel(), q.ravel(), c.ravel()
        slot, found = self._slot(e, q)
        lo = np.zeros(len(e), dtype=np.int64)
        hi = np.zeros(len(e), dtype=np.int64)
        lo[found] = self.indptr[slot[found]]
        hi[found] = self.indptr[slot[found] + 1]
        end = hi.copy()
        # vectorized lower_bound of c in answers[lo:hi]
        while True:
            active = lo < hi
            if not active.any():
                break
            mid = (lo + hi) // 2
            go_right = active & (self.flat_answers[np.minimum(mid, len(self.flat_answers) - 1)] < c)
            lo = np.where(go_right, mid + 1, lo)
            hi = np.where(active & ~go_right, mid, hi)
        hit = lo < end
        hit[hit] = self.flat_answers[lo[hit]] == c[hit]
        return hit.reshape(shape)


class NeighbourIndex:
    """CSR adjacency of the train triples in both directions.

    Every train triple ``i = (h, r, t)`` gives two entries: one in the row of ``h`` with query
    relation ``r`` and neighbour ``t``, one in the row of ``t`` with query relation ``r + R``
    and neighbour ``h``; both carry ``edge = i``. Within a row, entries are sorted by query
    relation, then by train row index.

    :param train: int64 ``(n, 3)`` train triples
    :param num_entities: ``E``
    :param num_relations: ``R``

    :ivar indptr: int64 ``(E + 1,)``; row ``e`` is ``indptr[e]:indptr[e+1]``
    :ivar query_relation: int64 ``(2n,)``
    :ivar neighbour: int64 ``(2n,)``
    :ivar edge: int64 ``(2n,)`` row index of the train triple the entry comes from
    """

    def __init__(self, train: np.ndarray, *, num_entities: int, num_relations: int):
        self.num_entities = int(num_entities)
        self.num_relations = int(num_relations)
        train = np.asarray(train, dtype=np.int64).reshape(-1, 3)
        n = len(train)
        q_count = 2 * self.num_relations
        counts = np.bincount(train[:, 0], minlength=self.num_entities)
        counts += np.bincount(train[:, 2], minlength=self.num_entities)
        self.indptr = _readonly(np.concatenate([[0], np.cumsum(counts)]).astype(np.int64))
        del counts
        edge_bits = max(n - 1, 1).bit_length()
        q_bits = max(q_count - 1, 1).bit_length()
        entity_bits = max(self.num_entities - 1, 1).bit_length()
        if entity_bits + q_bits + edge_bits <= 62:
            # One sort of unique packed int64 keys (entity | query relation | edge bit fields):
            # much faster than a stable argsort; shifts and masks recover the fields.
            key = np.concatenate([train[:, 0], train[:, 2]])
            key <<= q_bits
            key[:n] |= train[:, 1]
            key[n:] |= train[:, 1] + self.num_relations
            key <<= edge_bits
            key[:n] |= np.arange(n, dtype=np.int64)
            key[n:] |= np.arange(n, dtype=np.int64)
            key.sort()
            edge = key & ((1 << edge_bits) - 1)
            key >>= edge_bits
            key &= (1 << q_bits) - 1
            relation = key
            del key
            # one gather from the flat (n, 3) array: column 2 (tail) forwards, 0 (head) backwards
            column = np.where(relation < self.num_relations, 2, 0)
            column += edge * 3
            neighbour = np.ascontiguousarray(train).ravel()[column]
            del column
        else:  # pragma: no cover - needs more than 62 bits for (entity, q, edge)
            key = np.concatenate([train[:, 0], train[:, 2]]) * q_count
            key[:n] += train[:, 1]
            key[n:] += train[:, 1] + self.num_relations
            order = np.argsort(key, kind="stable")
            del key
            edge = np.concatenate([np.arange(n, dtype=np.int64), np.arange(n, dtype=np.int64)])[
                order
            ]
            relation = np.concatenate([train[:, 1], train[:, 1] + self.num_relations])[order]
            neighbour = np.concatenate([train[:, 2], train[:, 0]])[order]
            del order
        self.edge = _readonly(edge)
        self.query_relation = _readonly(relation)
        self.neighbour = _readonly(neighbour)

    def __len__(self) -> int:
        """Number of entries (twice the number of train triples)."""
        return len(self.neighbour)

    def degree(self, entity: int | np.ndarray) -> int | np.ndarray:
        """Number of entries (both directions) of ``entity`` (scalar or array)."""
        entity = np.asarray(entity)
        result = self.indptr[entity + 1] - self.indptr[entity]
        return int(result) if result.ndim == 0 else result

    def of(self, entity: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(query_relations, neighbours, edges)`` of ``entity``: three int64 views, same length."""
        start, stop = int(self.indptr[entity]), int(self.indptr[entity + 1])
        return (
            self.query_relation[start:stop],
            self.neighbour[start:stop],
            self.edge[start:stop],
        )

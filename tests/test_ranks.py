"""Hand-computed filtered ranks: ties, filtering, and the fallback rank outside the beam."""

from __future__ import annotations

import numpy as np
import pytest

from kgt5mm.evaluation import filter_mask, rank_from_scores, ranks_from_beams


def test_full_scores_with_ties_and_filter():
    #          e0   e1   e2   e3   e4   e5
    scores = np.array([
        [0.9, 0.5, 0.5, 0.5, 0.1, 0.7],   # target e2 tied with e1, e3; e5 better; e0 filtered
        [0.2, 0.2, 0.2, 0.2, 0.2, 0.2],   # all tied, target e0, nothing filtered
        [0.0, -1.0, 3.0, 2.0, 1.0, 0.5],  # target e4; e2, e3 filtered -> rank 1
    ])
    filt = np.zeros((3, 6), bool)
    filt[0, 0] = True
    filt[2, [2, 3, 4]] = True  # the target's own column is never removed
    ranks = rank_from_scores(scores, np.array([2, 0, 4]), filt)
    np.testing.assert_array_equal(ranks.optimistic, [2, 1, 1])   # 1 + #better
    np.testing.assert_array_equal(ranks.pessimistic, [4, 6, 1])  # #(>=), target included
    np.testing.assert_array_equal(ranks.realistic, [3, 3.5, 1])
    assert ranks.in_beam.all()


def test_beam_ranks_in_beam_with_ties_and_filter():
    ents = np.array([[5, 0, 2, 1, 3]])
    scores = np.array([[-1.0, -2.0, -2.0, -2.0, -3.0]])
    known = np.array([[False, True, False, False, False]])  # e0 is another known answer
    ranks = ranks_from_beams(ents, scores, np.array([2]), num_entities=10, known=known,
                             num_known=np.array([1]))
    # kept: e5 (-1), e2 (-2, target), e1 (-2), e3 (-3) -> optimistic 2, pessimistic 3
    assert ranks.optimistic[0] == 2 and ranks.pessimistic[0] == 3 and ranks.realistic[0] == 2.5
    assert ranks.in_beam[0]


def test_fallback_rank_outside_the_beam():
    # E = 10; beam 4 entities, one of them (e7) another known answer; one more known answer
    # (e9) outside the beam; target e8 not in the beam.
    ents = np.array([[1, 7, 2, 3]])
    scores = np.array([[-1.0, -1.5, -2.0, -4.0]])
    known = np.array([[False, True, False, False]])
    ranks = ranks_from_beams(ents, scores, np.array([8]), num_entities=10, known=known,
                             num_known=np.array([2]))
    # kept n = 3; unranked non-filtered entities: 10 - 3 kept - e7 - e9 = 5 (target included)
    assert not ranks.in_beam[0]
    assert ranks.optimistic[0] == 4          # n + 1
    assert ranks.pessimistic[0] == 8         # n + U
    assert ranks.realistic[0] == 6           # expected rank among the 5 tied slots


def test_empty_beam_slots_and_filtered_target_slot():
    ents = np.array([[4, -1, -1], [4, 2, -1]])
    scores = np.array([[-1.0, -np.inf, -np.inf], [-1.0, -2.0, -np.inf]])
    # query 1: target e2 is itself a known answer -> must never be filtered
    known = np.array([[False, False, False], [True, True, False]])
    ranks = ranks_from_beams(ents, scores, np.array([0, 2]), num_entities=5, known=known,
                             num_known=np.array([0, 1]))
    assert not ranks.in_beam[0] and ranks.optimistic[0] == 2 and ranks.pessimistic[0] == 5
    assert ranks.in_beam[1] and ranks.optimistic[1] == 1 and ranks.pessimistic[1] == 1


def test_beam_ranks_equal_full_ranks_when_the_beam_holds_every_entity():
    rng = np.random.default_rng(0)
    n, E = 50, 12
    scores = rng.integers(0, 5, size=(n, E)).astype(float)  # many ties
    targets = rng.integers(0, E, size=n)
    filt = rng.random((n, E)) < 0.2
    full = rank_from_scores(scores, targets, filt)
    order = np.argsort(-scores, axis=1, kind="stable")
    beam_scores = np.take_along_axis(scores, order, 1)
    known = np.take_along_axis(filt, order, 1)
    num_known = filt.sum(1) - filt[np.arange(n), targets]
    beam = ranks_from_beams(order, beam_scores, targets, num_entities=E, known=known,
                            num_known=num_known)
    np.testing.assert_array_equal(beam.optimistic, full.optimistic)
    np.testing.assert_array_equal(beam.pessimistic, full.pessimistic)
    np.testing.assert_array_equal(beam.realistic, full.realistic)


def test_filter_mask_from_a_filter_index():
    from kgt5mm.data import KnowledgeGraph

    kg = KnowledgeGraph.from_triples(
        train=[("a", "r", "b"), ("a", "r", "c")], valid=[("a", "r", "d")], test=[("a", "r", "c")],
        name="toy")
    q = kg.queries("test")
    mask = filter_mask(q, kg.filter_index, kg.num_entities)
    idx = {n: kg.entity_index(n) for n in "abcd"}
    tail = mask[0]
    assert tail[idx["b"]] and tail[idx["d"]] and not tail[idx["c"]] and not tail[idx["a"]]
    head = mask[1]  # (c, r^-1, ?) answer a: nothing else known
    assert not head.any()


def test_nan_scores_are_rejected():
    from kgt5mm.errors import KGT5MMError

    with pytest.raises(KGT5MMError):
        rank_from_scores(np.array([[np.nan, 1.0]]), np.array([1]))
    # a NaN inside a beam list would rank its target first (MRR > 1): rejected too; a NaN in
    # an empty slot (-1) is ignored
    with pytest.raises(KGT5MMError, match="NaN"):
        ranks_from_beams(np.array([[5, 3, 7]]), np.array([[np.nan, -2.0, -3.0]]), np.array([5]),
                         num_entities=10)
    ranks = ranks_from_beams(np.array([[5, -1]]), np.array([[-1.0, np.nan]]), np.array([5]),
                             num_entities=10)
    assert ranks.realistic.tolist() == [1.0]

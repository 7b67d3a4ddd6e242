"""Metric formulas against PyKEEN's definitions, written out independently here."""

from __future__ import annotations

import math

import numpy as np

from kgt5mm.evaluation import Ranks, compute_metrics, hits_at_k, mean_rank, mean_reciprocal_rank


def _pykeen_reference(ranks):
    """PyKEEN: inverse_harmonic_mean_rank = mean(1/r); hits_at_k = mean(r <= k);
    arithmetic_mean_rank = mean(r); realistic rank = (optimistic + pessimistic) / 2."""
    n = len(ranks)
    return {
        "mrr": sum(1.0 / r for r in ranks) / n,
        "hits_at_1": sum(1 for r in ranks if r <= 1) / n,
        "hits_at_3": sum(1 for r in ranks if r <= 3) / n,
        "hits_at_10": sum(1 for r in ranks if r <= 10) / n,
        "mean_rank": sum(ranks) / n,
    }


def test_single_metric_functions():
    ranks = [1, 2, 10.5, 3, 11]
    ref = _pykeen_reference(ranks)
    assert math.isclose(mean_reciprocal_rank(np.array(ranks)), ref["mrr"])
    assert hits_at_k(np.array(ranks), 10) == ref["hits_at_10"] == 0.6  # 10.5 is not a hit
    assert hits_at_k(np.array(ranks), 3) == 0.6
    assert mean_rank(np.array(ranks)) == ref["mean_rank"]
    assert math.isnan(mean_reciprocal_rank(np.array([])))


def test_flat_metric_dictionary_per_side_and_rank_type():
    R = 3
    opt = np.array([1.0, 1.0, 4.0, 2.0, 7.0])
    pes = np.array([1.0, 3.0, 4.0, 9.0, 13.0])
    ranks = Ranks(optimistic=opt, realistic=(opt + pes) / 2, pessimistic=pes,
                  in_beam=np.array([True, True, True, False, False]),
                  query_relations=np.array([0, 2, 3, 5, 1]))
    m = compute_metrics(ranks, num_relations=R)
    assert m["num_queries"] == 5
    tail = [0, 1, 4]  # q < R
    head = [2, 3]     # q >= R
    for side, idx in (("tail", tail), ("head", head), ("both", [0, 1, 2, 3, 4])):
        for rank_type, values in (("optimistic", opt), ("pessimistic", pes),
                                  ("realistic", (opt + pes) / 2)):
            ref = _pykeen_reference(list(values[idx]))
            for name, value in ref.items():
                assert math.isclose(m[f"{side}.{rank_type}.{name}"], value), (side, rank_type, name)
    assert m["both.in_beam_share"] == 0.6
    assert m["head.in_beam_share"] == 0.5
    assert math.isclose(m["tail.in_beam_share"], 2 / 3)
    expected_keys = {f"{s}.{t}.{n}" for s in ("head", "tail", "both")
                     for t in ("optimistic", "realistic", "pessimistic")
                     for n in ("mrr", "hits_at_1", "hits_at_3", "hits_at_10", "mean_rank")}
    expected_keys |= {f"{s}.in_beam_share" for s in ("head", "tail", "both")} | {"num_queries"}
    assert set(m) == expected_keys

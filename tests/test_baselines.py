"""The KGE baseline trains and is ranked exactly like an independent per-query computation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from kgt5mm.baselines import KGEConfig, evaluate_kge, train_kge
from kgt5mm.data import load_graph
from kgt5mm.errors import ConfigError


@pytest.fixture(scope="module")
def tiny():
    kg = load_graph("wn9_img_tiny")
    model = train_kge(kg, KGEConfig(dim=16, epochs=30, eval_every=10, batch_size=64), progress=False)
    return kg, model


def _independent_ranks(model, kg, queries):
    """Filtered realistic rank per query by a plain Python loop over every entity."""
    known = {}
    for split in ("train", "valid", "test"):
        for h, r, t in kg.splits[split]:
            known.setdefault((h, r), set()).add(t)
            known.setdefault((t, r + kg.num_relations), set()).add(h)
    out = []
    with torch.no_grad():
        for e, q, a in queries:
            scores = model.score_all(torch.tensor([e]), torch.tensor([q]))[0].double().tolist()
            target = scores[a]
            better = equal = 0
            for candidate, s in enumerate(scores):
                if candidate != a and candidate in known[(e, q)]:
                    continue
                better += s > target
                equal += s == target
            out.append(((better + 1) + (better + equal)) / 2)
    return np.array(out)


def test_baseline_ranks_match_independent_loop(tiny):
    kg, model = tiny
    result = evaluate_kge(model, kg, split="test")
    expected = _independent_ranks(model, kg, kg.queries("test"))
    np.testing.assert_allclose(result.ranks.realistic, expected)
    assert result.metrics["both.realistic.mrr"] == pytest.approx(np.mean(1 / expected))


def test_baseline_learns_the_training_graph(tiny):
    kg, model = tiny
    train_mrr = evaluate_kge(model, kg, split="train").metrics["both.realistic.mrr"]
    # random scoring of ~100+ candidates would give an MRR far below 0.2
    assert train_mrr > 0.5


def test_baseline_config_rejects_bad_values():
    with pytest.raises(ConfigError, match="dim"):
        KGEConfig(dim=0)
    with pytest.raises(ConfigError, match="model"):
        KGEConfig(model="transe")

"""evaluate(): beam ranking equals exhaustive ranking, output files, distributed sharding."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from test_eval_helpers import one_thread, tiny_setup

from kgt5mm.errors import KGT5MMError
from kgt5mm.evaluation import EvalConfig, evaluate


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    with one_thread():
        yield


@pytest.fixture(scope="module")
def setup():
    return tiny_setup()


def test_beam_ranking_with_all_entities_equals_exhaustive_ranking(setup):
    E = setup.kg.num_entities
    exact = evaluate(setup.model, setup.tokenizer, setup.kg, setup.builder, split="test",
                     config=EvalConfig(exhaustive=True))
    beam = evaluate(setup.model, setup.tokenizer, setup.kg, setup.builder, split="test",
                    config=EvalConfig(num_beams=E, top_k=E, batch_size=8))
    np.testing.assert_array_equal(beam.ranks.optimistic, exact.ranks.optimistic)
    np.testing.assert_array_equal(beam.ranks.pessimistic, exact.ranks.pessimistic)
    assert beam.ranks.in_beam.all()
    assert beam.metrics == exact.metrics
    assert exact.metrics["num_queries"] == 2 * len(setup.kg.splits["test"])
    # The trained model is better than chance (E = 112 entities: random MRR ~ 0.05).
    assert exact.metrics["both.realistic.mrr"] > 0.1


def test_narrow_beam_ranks_bound_the_exact_ranks(setup):
    exact = evaluate(setup.model, setup.tokenizer, setup.kg, setup.builder, split="test",
                     config=EvalConfig(exhaustive=True))
    beam = evaluate(setup.model, setup.tokenizer, setup.kg, setup.builder, split="test",
                    config=EvalConfig(num_beams=3, top_k=3))
    r = beam.ranks
    assert ((r.optimistic <= r.realistic) & (r.realistic <= r.pessimistic)).all()
    inside = r.in_beam
    assert 0 < inside.mean() <= 1
    assert beam.metrics["both.in_beam_share"] == pytest.approx(inside.mean())
    # Wherever the beam found the target, its rank is the exact one (beam = exact top-k here
    # only if no better entity was pruned; optimistic can only be smaller or equal).
    assert (r.optimistic[inside] <= exact.ranks.optimistic[inside]).all()
    # Outside the beam the exact rank lies within the [optimistic, pessimistic] fallback range.
    out = ~inside
    assert (exact.ranks.optimistic[out] >= r.optimistic[out]).all()
    assert (exact.ranks.pessimistic[out] <= r.pessimistic[out]).all()


def test_top_k_below_ten_warns_that_hits_at_10_is_inexact(setup, caplog):
    config = EvalConfig(num_beams=3, top_k=3, max_queries=4)
    with caplog.at_level("WARNING", logger="kgt5mm.evaluation.evaluator"):
        evaluate(setup.model, setup.tokenizer, setup.kg, setup.builder, split="test", config=config)
    assert "Hits@10 is inexact" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING", logger="kgt5mm.evaluation.evaluator"):
        evaluate(setup.model, setup.tokenizer, setup.kg, setup.builder, split="test",
                 config=EvalConfig(max_queries=4))
    assert "inexact" not in caplog.text


def test_filter_aware_beams_leave_top_k_candidates_after_filtering(setup):
    from collections import defaultdict

    from kgt5mm.evaluation import query_beam_widths

    kg = setup.kg
    R = kg.num_relations
    answers = defaultdict(set)  # independent of FilterIndex: straight from the triples
    for split in ("train", "valid", "test"):
        for h, r, t in kg.splits[split].tolist():
            answers[(h, r)].add(t)
            answers[(t, r + R)].add(h)
    queries = kg.queries("test")
    config = EvalConfig(num_beams=3, top_k=4, filter_aware_beams=True, max_beams=6, batch_size=8)
    beams, topk = query_beam_widths(kg, queries, config)
    others = np.array([len(answers[(e, q)] - {t}) for e, q, t in queries.tolist()])
    assert others.max() > 3, "the tiny graph must have a query with several known answers"
    np.testing.assert_array_equal(beams, np.minimum(3 + others, 6))
    np.testing.assert_array_equal(topk, beams + 1)
    plain = EvalConfig(num_beams=3, top_k=4, batch_size=8)
    np.testing.assert_array_equal(query_beam_widths(kg, queries, plain)[0], 3)

    wide = evaluate(setup.model, setup.tokenizer, kg, setup.builder, split="test", config=config)
    narrow = evaluate(setup.model, setup.tokenizer, kg, setup.builder, split="test", config=plain)
    exact = evaluate(setup.model, setup.tokenizer, kg, setup.builder, split="test",
                     config=EvalConfig(exhaustive=True))
    ents = wide.predictions.entities
    for i, (e, q, t) in enumerate(queries.tolist()):
        found = [x for x in ents[i] if x >= 0]
        unfiltered = [x for x in found if x == t or x not in answers[(e, q)]]
        if beams[i] - 3 == others[i]:  # not capped: top_k candidates survive filtering
            assert len(unfiltered) >= min(4, kg.num_entities - others[i])
    r = wide.ranks
    assert (r.optimistic[r.in_beam] <= exact.ranks.optimistic[r.in_beam]).all()
    assert r.in_beam.mean() >= narrow.ranks.in_beam.mean()


def test_outputs_metrics_json_table_and_plot(setup, tmp_path):
    result = evaluate(setup.model, setup.tokenizer, setup.kg, setup.builder, split="valid",
                      config=EvalConfig(num_beams=4, top_k=4, max_queries=20, seed=3))
    assert result.metrics["num_queries"] == 20
    same = evaluate(setup.model, setup.tokenizer, setup.kg, setup.builder, split="valid",
                    config=EvalConfig(num_beams=4, top_k=4, max_queries=20, seed=3))
    np.testing.assert_array_equal(result.queries, same.queries)
    paths = result.save(tmp_path)
    data = json.loads(paths["metrics"].read_text())
    assert data["metrics"]["both.realistic.mrr"] == pytest.approx(result.metrics["both.realistic.mrr"])
    assert len(data["ranks"]["realistic"]) == 20
    lines = paths["per_relation"].read_text().splitlines()
    assert lines[0].split("\t")[:4] == ["relation", "name", "side", "num_queries"]
    both = [line.split("\t") for line in lines[1:] if line.split("\t")[2] == "both"]
    assert sum(int(row[3]) for row in both) == 20
    assert paths["plot"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "| relation |" in result.per_relation_table(fmt="md")



def test_per_relation_chart_keeps_the_most_frequent_relations_of_a_large_schema():
    from kgt5mm.evaluation.evaluator import plotted_relations

    counts = {0: 5, 1: 9, 2: 1, 3: 9, 4: 7}
    rows = [{"relation": r, "side": side, "num_queries": n}
            for r, n in counts.items() for side in ("tail", "both")]
    assert plotted_relations(rows, 5) == ([0, 1, 2, 3, 4], False)
    assert plotted_relations(rows, 3) == ([1, 3, 4], True)   # most queries first, ties by id
    with pytest.raises(KGT5MMError, match="max_relations"):
        plotted_relations(rows, 0)

WORKER = textwrap.dedent("""
    import json, sys, torch
    torch.set_num_threads(1)
    from accelerate import Accelerator
    from kgt5mm.evaluation import EvalConfig
    from kgt5mm.hub import KGT5MMModel
    accelerator = Accelerator(cpu=True)
    model = KGT5MMModel.from_pretrained(sys.argv[1])
    config = EvalConfig(num_beams=4, top_k=4, batch_size=5, max_queries=int(sys.argv[3]),
                        candidate_views=int(sys.argv[4]))
    result = model.evaluate(split="test", config=config, accelerator=accelerator)
    out = {"metrics": result.metrics, "ranks": result.ranks.to_dict(),
           "queries": result.queries.tolist(), "entities": result.predictions.entities.tolist(),
           "world": accelerator.num_processes}
    with open(sys.argv[2] + f".{accelerator.process_index}.json", "w") as f:
        json.dump(out, f)
    from kgt5mm.commands import close_process_group
    close_process_group()  # a gloo group left open can abort the process at exit
""")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _launch(folder: Path, out: Path, world: int, max_queries: int, views: int = 0) -> list[dict]:
    script = out.parent / "worker.py"
    script.write_text(WORKER)
    port = _free_port()
    procs = []
    for rank in range(world):
        env = dict(os.environ, MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port),
                   WORLD_SIZE=str(world), RANK=str(rank), LOCAL_RANK=str(rank),
                   LOCAL_WORLD_SIZE=str(world), OMP_NUM_THREADS="1")
        if world == 1:
            for key in ("MASTER_ADDR", "MASTER_PORT", "WORLD_SIZE", "RANK", "LOCAL_RANK",
                        "LOCAL_WORLD_SIZE"):
                env.pop(key)
        procs.append(subprocess.Popen([sys.executable, str(script), str(folder), str(out),
                                       str(max_queries), str(views)],
                                      env=env, stderr=subprocess.PIPE, text=True))
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err[-3000:]
    return [json.loads(Path(f"{out}.{r}.json").read_text()) for r in range(world)]


@pytest.mark.parametrize(("max_queries", "views"), [
    pytest.param(34, 0, marks=pytest.mark.slow),
    pytest.param(3, 0, marks=pytest.mark.slow),
    (34, 64),  # in the default run: shards' lists differ in width (up to 4 vs 7 candidates)
])
def test_two_process_evaluation_equals_single_process(setup, tmp_path, max_queries, views):
    """All test queries, an odd tiny subset, and candidate views (whose lists differ in width
    between the shards)."""
    from kgt5mm.hub import KGT5MMModel

    config = {"data": {"dataset": "wn9_img_tiny"},
              "context": setup.context_config.resolved().to_dict()}
    folder = KGT5MMModel.from_training(setup.model, setup.tokenizer, setup.kg, config) \
        .save_pretrained(tmp_path / "model")
    single = _launch(folder, tmp_path / "single", 1, max_queries, views)[0]
    double = _launch(folder, tmp_path / "double", 2, max_queries, views)
    assert single["world"] == 1 and double[0]["world"] == 2
    assert double[0] == double[1], "every process must return the same gathered result"
    assert double[0]["queries"] == single["queries"]
    assert len(double[0]["queries"]) == max_queries
    assert double[0]["entities"] == single["entities"]
    assert double[0]["ranks"] == single["ranks"]
    assert double[0]["metrics"] == single["metrics"]


def test_merge_candidate_scores_keeps_each_entitys_best_score():
    from kgt5mm.evaluation import merge_candidate_scores

    ninf = -np.inf
    entities = np.array([[5, 3, -1], [2, 7, 4], [9, -1, -1]])
    scores = np.array([[-1, -2, ninf], [-0.5, -3, -4], [-2, ninf, ninf]], dtype=np.float32)
    owner, cands = np.array([0, 0, 1, 1, 1]), np.array([3, 8, 7, 9, 6])
    view_scores = np.array([-0.5, -9, -1, -4.5, -3.5], dtype=np.float32)
    ent, sco, full = merge_candidate_scores(entities, scores, None, owner, cands, view_scores,
                                            np.array([3, 3, 3]))
    assert full is None
    # query 0: its beam list is not full, so every view score is listed; query 1: its list is
    # full (last score -4), so candidate 6 (-3.5) joins it and candidate 9 (-4.5) stays
    # unranked; query 2 has no views
    np.testing.assert_array_equal(ent, [[3, 5, 8, -1, -1, -1], [2, 7, 6, 4, -1, -1],
                                        [9, -1, -1, -1, -1, -1]])
    np.testing.assert_array_equal(sco, np.array([[-0.5, -1, -9] + [ninf] * 3,
                                                 [-0.5, -1, -3.5, -4, ninf, ninf],
                                                 [-2] + [ninf] * 5], dtype=np.float32))
    full_in = np.array([[0.0, -1, -2], [-3, -4, -0.5]], dtype=np.float32)
    ent, sco, full = merge_candidate_scores(
        np.zeros((2, 2), dtype=np.int64), np.zeros((2, 2), dtype=np.float32), full_in,
        np.array([0, 1, 1]), np.array([2, 0, 2]), np.array([-0.1, -1, -5], dtype=np.float32),
        np.array([2, 2]))
    np.testing.assert_array_equal(full, np.array([[0, -1, -0.1], [-1, -4, -0.5]], dtype=np.float32))
    np.testing.assert_array_equal(ent, [[0, 2], [2, 0]])
    with pytest.raises(KGT5MMError, match="non-decreasing"):
        merge_candidate_scores(entities, scores, None, np.array([1, 0]), cands[:2], view_scores[:2],
                               np.array([3, 3, 3]))


@pytest.mark.parametrize("exhaustive", [True, False])
def test_candidate_views_skip_views_the_full_context_already_scored(setup, monkeypatch, exhaustive):
    """A one-candidate query's view is its full context: with the candidate already scored
    there (exhaustive, or a full-width beam), only the several-candidate views are forced."""
    import kgt5mm.evaluation.evaluator as evaluator

    kg, views = setup.kg, 3
    forced = []
    real = evaluator.score_paired_entities

    def counting(model, trie, *, entities, **kwargs):
        forced.append(len(entities))
        return real(model, trie, entities=entities, **kwargs)

    monkeypatch.setattr(evaluator, "score_paired_entities", counting)
    config = (EvalConfig(exhaustive=True, candidate_views=views) if exhaustive else
              EvalConfig(num_beams=kg.num_entities, top_k=kg.num_entities, candidate_views=views))
    evaluate(setup.model, setup.tokenizer, kg, setup.builder, split="test", config=config)
    counts = [len(setup.builder.answer_candidates(e, q)) for e, q, _ in kg.queries("test").tolist()]
    several = sum(min(c, views) for c in counts if c > 1)
    assert 0 < several < sum(min(c, views) for c in counts)  # both kinds occur
    assert sum(forced) == several


def test_candidate_views_rank_by_the_best_exact_score_over_views(setup):
    """Exhaustive and full-width beam evaluation with candidate views against an independent
    computation: each entity scored by the model's own loss on the full context, each
    candidate also on its own view, the best kept, filtered realistic rank counted by hand."""
    import torch

    from kgt5mm.modeling import encode_targets

    kg, model, tokenizer = setup.kg, setup.model, setup.tokenizer
    E, views = kg.num_entities, 3
    exact = evaluate(model, tokenizer, kg, setup.builder, split="test",
                     config=EvalConfig(exhaustive=True, candidate_views=views))
    beam = evaluate(model, tokenizer, kg, setup.builder, split="test",
                    config=EvalConfig(num_beams=E, top_k=E, batch_size=8, candidate_views=views))
    np.testing.assert_array_equal(beam.ranks.optimistic, exact.ranks.optimistic)
    np.testing.assert_array_equal(beam.ranks.pessimistic, exact.ranks.pessimistic)

    queries = kg.queries("test")
    sources, owner, candidates = setup.builder.build_candidate_views(queries, views)
    assert len(sources) > len(set(owner.tolist()))  # some test queries have several candidates
    targets = encode_targets(tokenizer, kg.entity_names)
    width = max(len(t) for t in targets)
    labels = torch.full((E, width), -100, dtype=torch.long)
    for e, t in enumerate(targets):
        labels[e, : len(t)] = torch.tensor(t)

    def loss_scores(source: str) -> np.ndarray:
        ids = tokenizer([source], return_tensors="pt")["input_ids"].expand(E, -1)
        logp = model(input_ids=ids, labels=labels).logits.log_softmax(-1)
        token = logp.gather(-1, labels.clamp(min=0).unsqueeze(-1)).squeeze(-1)
        return (token * (labels >= 0)).sum(-1).double().numpy()

    with torch.no_grad():
        best = np.stack([loss_scores(src) for src in setup.builder.build_many(queries)])
        for source, i, c in zip(sources, owner.tolist(), candidates.tolist(), strict=True):
            best[i, c] = max(best[i, c], loss_scores(source)[c])
    rr = []
    for (e, q, answer), s in zip(queries.tolist(), best, strict=True):
        other = set(kg.filter_index.answers(e, q).tolist()) - {answer}
        keep = np.array([x not in other for x in range(E)])
        higher = int((s[keep] > s[answer] + 1e-5).sum())
        tied = int((np.abs(s[keep] - s[answer]) <= 1e-5).sum())  # includes the answer
        rr.append(1 / (1 + higher + (tied - 1) / 2))
    assert exact.metrics["both.realistic.mrr"] == pytest.approx(np.mean(rr), abs=1e-6)
    np.testing.assert_allclose(exact.predictions.full_scores, best, atol=1e-4)
    plain = evaluate(model, tokenizer, kg, setup.builder, split="test", config=EvalConfig(exhaustive=True))
    assert (exact.predictions.full_scores > plain.predictions.full_scores + 1e-3).sum() >= 5

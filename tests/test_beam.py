"""Constrained beam search against exhaustive teacher-forced scoring (the ground truth)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from test_eval_helpers import one_thread, tiny_setup

from kgt5mm.decoding import (
    EntityTrie,
    constrained_beam_search,
    score_all_entities,
    score_paired_entities,
)
from kgt5mm.evaluation import build_trie


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    with one_thread():
        yield


@pytest.fixture(scope="module")
def setup():
    return tiny_setup()


@pytest.fixture(scope="module")
def encoded(setup):
    queries = setup.kg.queries("test")
    sources = setup.builder.build_many(queries)
    enc = setup.tokenizer(sources, padding=True, return_tensors="pt")
    return queries, enc


def test_teacher_forced_scores_match_the_model_loss(setup, encoded):
    """Exhaustive scores equal -(token-summed cross entropy) from a plain forward pass."""
    queries, enc = encoded
    trie = build_trie(setup.model, setup.tokenizer, setup.kg.entity_names)
    scores = score_all_entities(setup.model, trie, input_ids=enc["input_ids"][:3],
                                attention_mask=enc["attention_mask"][:3], max_rows=50)
    from kgt5mm.modeling import encode_targets

    targets = encode_targets(setup.tokenizer, setup.kg.entity_names)
    with torch.no_grad():
        for b in range(3):
            for e in (0, 7, int(queries[b, 2])):
                labels = torch.tensor([targets[e]])
                out = setup.model(input_ids=enc["input_ids"][b:b + 1],
                                  attention_mask=enc["attention_mask"][b:b + 1], labels=labels)
                assert float(-out.loss * labels.shape[1]) == pytest.approx(float(scores[b, e]), abs=1e-4)


def test_paired_scores_equal_the_exhaustive_scores_of_each_sources_entity(setup, encoded):
    """score_paired_entities(b, e_b) is entry (b, e_b) of score_all_entities, for short and long names."""
    queries, enc = encoded
    trie = build_trie(setup.model, setup.tokenizer, setup.kg.entity_names)
    exact = score_all_entities(setup.model, trie, input_ids=enc["input_ids"],
                               attention_mask=enc["attention_mask"])
    n = len(queries)
    picks = torch.tensor([(i * 37 + 5) % setup.kg.num_entities for i in range(n)])
    picks[0] = int(queries[0, 2])
    paired = score_paired_entities(setup.model, trie, input_ids=enc["input_ids"],
                                   attention_mask=enc["attention_mask"], entities=picks)
    assert paired.shape == (n,)
    assert len({len(trie.sequence(int(e))) for e in picks}) > 1  # padded targets of several lengths
    torch.testing.assert_close(paired, exact[torch.arange(n), picks], atol=1e-4, rtol=0)
    with pytest.raises(ValueError, match="entities for"):
        score_paired_entities(setup.model, trie, input_ids=enc["input_ids"], entities=picks[:2])


def test_beam_with_all_entities_equals_exhaustive_for_every_test_query(setup, encoded):
    queries, enc = encoded
    kg = setup.kg
    trie = build_trie(setup.model, setup.tokenizer, kg.entity_names)
    E = kg.num_entities
    exact = score_all_entities(setup.model, trie, input_ids=enc["input_ids"],
                               attention_mask=enc["attention_mask"], max_rows=4096)
    beam = constrained_beam_search(setup.model, trie, input_ids=enc["input_ids"],
                                   attention_mask=enc["attention_mask"], num_beams=E, top_k=E)
    # Scores are far from uniform (the model was trained), so there are no near-ties.
    assert float(exact.std()) > 1.0
    order = exact.argsort(dim=1, descending=True)
    sorted_exact = exact.gather(1, order)
    assert (beam.entities >= 0).all(), "every entity must be reached with num_beams >= E"
    torch.testing.assert_close(beam.scores, sorted_exact, atol=2e-4, rtol=0)
    gaps = (sorted_exact[:, :-1] - sorted_exact[:, 1:]).abs()
    for b in range(len(queries)):
        if gaps[b].min() > 1e-3:
            assert beam.entities[b].tolist() == order[b].tolist()
        else:  # near-tied scores: same set, order may differ only inside a tie
            assert sorted(beam.entities[b].tolist()) == list(range(E))
    # Early stopping with top_k < E returns exactly the exhaustive top-k.
    small = constrained_beam_search(setup.model, trie, input_ids=enc["input_ids"],
                                    attention_mask=enc["attention_mask"], num_beams=E, top_k=5)
    torch.testing.assert_close(small.scores, sorted_exact[:, :5], atol=2e-4, rtol=0)


def test_narrow_beam_outputs_are_valid_distinct_entities_in_score_order(setup, encoded):
    queries, enc = encoded
    trie = build_trie(setup.model, setup.tokenizer, setup.kg.entity_names)
    exact = score_all_entities(setup.model, trie, input_ids=enc["input_ids"],
                               attention_mask=enc["attention_mask"])
    beam = constrained_beam_search(setup.model, trie, input_ids=enc["input_ids"],
                                   attention_mask=enc["attention_mask"], num_beams=4, top_k=8)
    for b in range(len(queries)):
        ents = [e for e in beam.entities[b].tolist() if e >= 0]
        assert len(ents) == len(set(ents)) and len(ents) >= 4
        got = beam.scores[b, : len(ents)]
        assert torch.all(got[:-1] >= got[1:])
        torch.testing.assert_close(got, exact[b, ents], atol=2e-4, rtol=0)


def test_generate_with_trie_logits_processor_returns_entity_names(setup, encoded):
    from transformers import LogitsProcessorList

    from kgt5mm.decoding import TrieLogitsProcessor

    queries, enc = encoded
    trie = build_trie(setup.model, setup.tokenizer, setup.kg.entity_names)
    out = setup.model.generate(
        input_ids=enc["input_ids"][:6], attention_mask=enc["attention_mask"][:6], num_beams=3,
        num_return_sequences=3, max_new_tokens=trie.max_length + 1, do_sample=False,
        logits_processor=LogitsProcessorList([TrieLogitsProcessor(trie)]),
    )
    names = set(setup.kg.entity_names)
    for row in setup.tokenizer.batch_decode(out, skip_special_tokens=True):
        assert row in names


def test_prefix_names_stay_valid_answers():
    """An entity whose name is a prefix of another's is found by beam search."""
    from transformers import T5Config, T5ForConditionalGeneration

    torch.manual_seed(0)
    config = T5Config(vocab_size=12, d_model=16, d_ff=32, num_layers=1, num_decoder_layers=1,
                      num_heads=2, d_kv=8, decoder_start_token_id=0, pad_token_id=0, eos_token_id=1)
    model = T5ForConditionalGeneration(config).eval()
    seqs = [[3, 1], [3, 4, 1], [3, 4, 5, 1], [6, 1]]
    trie = EntityTrie.from_sequences(seqs, vocab_size=12, eos_token_id=1, pad_token_id=0)
    ids = torch.randint(2, 12, (4, 5))
    beam = constrained_beam_search(model, trie, input_ids=ids, num_beams=4, top_k=4)
    exact = score_all_entities(model, trie, input_ids=ids)
    assert sorted(beam.entities[0].tolist()) == [0, 1, 2, 3]
    torch.testing.assert_close(beam.scores, exact.sort(dim=1, descending=True).values, atol=1e-5, rtol=0)
    assert np.isfinite(beam.scores.numpy()).all()


def test_wide_trie_nodes_cut_to_each_rows_best_children_change_nothing(monkeypatch):
    """The per-row top-k cut on wide nodes returns exactly the unreduced search's results."""
    from transformers import T5Config, T5ForConditionalGeneration

    from kgt5mm.decoding import beam as beam_module

    torch.manual_seed(0)
    vocab = 300
    config = T5Config(vocab_size=vocab, d_model=16, d_ff=32, num_layers=1, num_decoder_layers=1,
                      num_heads=2, d_kv=8, decoder_start_token_id=0, pad_token_id=0, eos_token_id=1)
    model = T5ForConditionalGeneration(config).eval()
    rng = np.random.default_rng(0)
    # wide root (~250 first tokens), prefix names (one-token names that start longer ones)
    seqs = {tuple(rng.integers(2, vocab, size=int(rng.integers(1, 4))).tolist()) + (1,)
            for _ in range(600)}
    seqs = sorted(seqs)
    trie = EntityTrie.from_sequences(seqs, vocab_size=vocab, eos_token_id=1, pad_token_id=0)
    ids = torch.randint(2, vocab, (7, 9))
    calls = []
    original = beam_module._row_best_candidates
    monkeypatch.setattr(beam_module, "_row_best_candidates",
                        lambda *a, **kw: calls.append(1) or original(*a, **kw))
    cut = constrained_beam_search(model, trie, input_ids=ids, num_beams=5, top_k=8)
    assert calls, "the wide-node path must run on this trie"
    monkeypatch.setattr(beam_module, "_WIDE", 10**9)
    full = constrained_beam_search(model, trie, input_ids=ids, num_beams=5, top_k=8)
    assert cut.entities.tolist() == full.entities.tolist()
    torch.testing.assert_close(cut.scores, full.scores, atol=0, rtol=0)


def test_grouped_cross_attention_equals_the_generic_cache_path(setup, encoded, monkeypatch):
    """T5 fast path (per-query cross-attention keys/values) == copying them to every beam row."""
    from kgt5mm.decoding import beam as beam_module

    queries, enc = encoded
    assert (enc["attention_mask"] == 0).any(), "padded sources exercise the key mask"
    trie = build_trie(setup.model, setup.tokenizer, setup.kg.entity_names)
    assert beam_module._GroupedCrossAttention.supports(setup.model)
    kwargs = dict(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"], num_beams=4, top_k=6)
    fast = constrained_beam_search(setup.model, trie, **kwargs)
    monkeypatch.setattr(beam_module._GroupedCrossAttention, "supports", classmethod(lambda cls, m: False))
    generic = constrained_beam_search(setup.model, trie, **kwargs)
    assert fast.entities.tolist() == generic.entities.tolist()
    torch.testing.assert_close(fast.scores, generic.scores, atol=1e-5, rtol=0)
    # the modules are restored: a plain forward still works and matches
    assert "forward" not in vars(setup.model.decoder.block[0].layer[1].EncDecAttention)


def test_per_query_beam_widths_equal_separate_runs_at_each_width(setup, encoded):
    """A (B,) num_beams/top_k tensor gives each query the result of a run at its own width."""
    queries, enc = encoded
    trie = build_trie(setup.model, setup.tokenizer, setup.kg.entity_names)
    n = min(12, len(queries))
    ids, mask = enc["input_ids"][:n], enc["attention_mask"][:n]
    widths = torch.tensor([2, 5, 9, 3] * 3)[:n]
    mixed = constrained_beam_search(setup.model, trie, input_ids=ids, attention_mask=mask,
                                    num_beams=widths, top_k=widths + 1)
    assert mixed.entities.shape == (n, int(widths.max()) + 1)
    for w in widths.unique().tolist():
        alone = constrained_beam_search(setup.model, trie, input_ids=ids, attention_mask=mask,
                                        num_beams=w, top_k=w + 1)
        for b in torch.nonzero(widths == w).squeeze(1).tolist():
            assert mixed.entities[b, : w + 1].tolist() == alone.entities[b].tolist()
            torch.testing.assert_close(mixed.scores[b, : w + 1], alone.scores[b], atol=1e-5, rtol=0)
            assert (mixed.entities[b, w + 1:] == -1).all()


@pytest.mark.parametrize("vocab,names,used", [(300, 600, ("cut",)), (50, 1500, ("drop", "cut"))])
def test_candidate_pruning_shortcuts_change_nothing(monkeypatch, vocab, names, used):
    """Dropping hopeless candidates and cutting wide nodes keep the plain search's results."""
    from transformers import T5Config, T5ForConditionalGeneration

    from kgt5mm.decoding import beam as beam_module

    torch.manual_seed(1)
    config = T5Config(vocab_size=vocab, d_model=16, d_ff=32, num_layers=1, num_decoder_layers=1,
                      num_heads=2, d_kv=8, decoder_start_token_id=0, pad_token_id=0, eos_token_id=1)
    model = T5ForConditionalGeneration(config).eval()
    rng = np.random.default_rng(1)
    seqs = sorted({tuple(rng.integers(2, vocab, size=int(rng.integers(1, 4))).tolist()) + (1,)
                   for _ in range(names)})
    trie = EntityTrie.from_sequences(seqs, vocab_size=vocab, eos_token_id=1, pad_token_id=0)
    ids = torch.randint(2, vocab, (7, 9))
    calls = {"drop": 0, "cut": 0}
    for name, key in (("_drop_hopeless", "drop"), ("_row_best_candidates", "cut")):
        original = getattr(beam_module, name)
        monkeypatch.setattr(beam_module, name, lambda *a, _f=original, _k=key, **kw:
                            calls.__setitem__(_k, calls[_k] + 1) or _f(*a, **kw))
    results = []
    for compat in (False, True):
        args = dict(input_ids=ids, num_beams=5, top_k=8, eos_within_top_beams=compat)
        results.append(constrained_beam_search(model, trie, **args))
    assert all(calls[key] for key in used), calls
    monkeypatch.setattr(beam_module, "_WIDE", 10**9)  # neither shortcut
    for compat, fast in zip((False, True), results, strict=True):
        plain = constrained_beam_search(model, trie, input_ids=ids, num_beams=5, top_k=8,
                                        eos_within_top_beams=compat)
        assert fast.entities.tolist() == plain.entities.tolist()
        torch.testing.assert_close(fast.scores, plain.scores, atol=0, rtol=0)

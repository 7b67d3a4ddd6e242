"""The entity trie: construction, masks, transitions, and validity of decoded outputs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from kgt5mm.decoding import EntityTrie, constrained_beam_search
from kgt5mm.errors import KGT5MMError

V, EOS, PAD = 10, 1, 0
SEQS = [[3, 1], [3, 4, 1], [3, 4, 5, 1], [6, 7, 1], [6, 8, 1]]


@pytest.fixture()
def trie():
    return EntityTrie.from_sequences(SEQS, vocab_size=V, eos_token_id=EOS, pad_token_id=PAD)


def allowed(trie, prefix):
    state = trie.walk(torch.tensor([prefix], dtype=torch.long))
    return set(torch.nonzero(trie.allowed_mask(state)[0]).squeeze(1).tolist())


def test_allowed_tokens_follow_the_names(trie):
    assert allowed(trie, []) == {3, 6}
    assert allowed(trie, [3]) == {EOS, 4}  # "3" is a name and a prefix of others
    assert allowed(trie, [3, 4]) == {EOS, 5}
    assert allowed(trie, [3, 4, 5]) == {EOS}
    assert allowed(trie, [6]) == {7, 8}


def test_after_eos_and_on_dead_paths_only_padding(trie):
    assert allowed(trie, [3, EOS]) == {PAD}
    assert allowed(trie, [3, EOS, PAD, PAD]) == {PAD}
    assert allowed(trie, [9]) == {PAD}  # impossible prefix: dead state, still never empty
    states = torch.arange(trie.num_nodes + 1)
    assert trie.allowed_mask(states).any(dim=1).all()


def test_terminal_states_map_to_entities(trie):
    for entity, seq in enumerate(SEQS):
        state = trie.walk(torch.tensor([seq]))
        assert trie.entity_of(state).item() == entity
        assert trie.sequence(entity) == seq
    assert trie.entity_of(trie.walk(torch.tensor([[3, 4]]))).item() == -1


def test_vectorized_step_matches_a_dict_trie():
    rng = np.random.default_rng(1)
    seqs = {tuple(rng.integers(2, 30, size=rng.integers(1, 6)).tolist()) for _ in range(400)}
    seqs = [list(s) + [EOS] for s in seqs]
    trie = EntityTrie.from_sequences(seqs, vocab_size=30, eos_token_id=EOS, pad_token_id=PAD)
    children: dict[tuple, set] = {}
    for s in seqs:
        for i in range(len(s)):
            children.setdefault(tuple(s[:i]), set()).add(s[i])
    prefixes = list(children)
    for start in range(0, len(prefixes), 64):
        chunk = prefixes[start:start + 64]
        width = max(len(p) for p in chunk)
        states = []
        for p in chunk:  # walk row by row (prefixes have different lengths)
            states.append(trie.walk(torch.tensor([p], dtype=torch.long).reshape(1, len(p))).item())
        mask = trie.allowed_mask(torch.tensor(states))
        for row, p in enumerate(chunk):
            assert set(torch.nonzero(mask[row]).squeeze(1).tolist()) == children[p], (p, width)


def test_duplicate_sequences_raise_with_names():
    with pytest.raises(KGT5MMError, match="'b'.*same target token sequence|same target token sequence"):
        EntityTrie.from_sequences([[3, 1], [4, 1], [3, 1]], vocab_size=V, eos_token_id=EOS,
                                  pad_token_id=PAD, names=["a", "c", "b"])


@pytest.mark.parametrize("bad", [[[3]], [[1]], [[3, 1, 4, 1]], [[0, 3, 1]], [[12, 1]]])
def test_malformed_sequences_raise(bad):
    with pytest.raises(KGT5MMError):
        EntityTrie.from_sequences(bad, vocab_size=V, eos_token_id=EOS, pad_token_id=PAD)


def _decode_all_valid(kg, steps_tokenizer_kwargs=None):
    from kgt5mm.context import ContextBuilder, ContextConfig
    from kgt5mm.evaluation import build_trie
    from kgt5mm.modeling import ModelConfig, TokenizerConfig, build_model, train_tokenizer

    torch.manual_seed(0)
    tokenizer = train_tokenizer(kg, config=TokenizerConfig(vocab_size=2000, use_descriptions=False,
                                                           use_vlm_text=False))
    model = build_model(ModelConfig(size="tiny", dropout_rate=0.0), tokenizer=tokenizer).eval()
    trie = build_trie(model, tokenizer, kg.entity_names)
    assert trie.num_entities == kg.num_entities
    queries = kg.queries("test")[:: max(1, len(kg.queries("test")) // 12)][:12]
    builder = ContextBuilder(kg, ContextConfig(budget_tokens=32))
    enc = tokenizer(builder.build_many(queries), padding=True, return_tensors="pt")
    with torch.inference_mode():
        beam = constrained_beam_search(model, trie, input_ids=enc["input_ids"],
                                       attention_mask=enc["attention_mask"], num_beams=5, top_k=5)
    # Decode the generated ids back to text: every output is exactly one entity's name.
    names = kg.entity_names
    for row in beam.entities.tolist():
        assert all(e >= 0 for e in row) and len(set(row)) == len(row)
        for e in row:
            ids = trie.sequence(e)
            assert tokenizer.decode(ids, skip_special_tokens=True) == names[e]


def test_decoded_outputs_are_entity_names_wn9_img():
    from kgt5mm.data import load_graph

    _decode_all_valid(load_graph("wn9_img"))


@pytest.mark.shared_data
@pytest.mark.parametrize("name", ["mkg_w", "mkg_y"])
def test_decoded_outputs_are_entity_names_mkg(shared_data_dir, name):
    from kgt5mm.data import load_graph

    _decode_all_valid(load_graph(name, data_dir=shared_data_dir))

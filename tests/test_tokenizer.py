"""The SentencePiece tokenizer: exact round trip of every entity name, target encoding."""

from __future__ import annotations

import pytest

from kgt5mm.context import SPECIAL_TOKENS
from kgt5mm.data import KnowledgeGraph, load_graph
from kgt5mm.errors import KGT5MMError
from kgt5mm.modeling import TokenizerConfig, encode_targets, load_tokenizer, train_tokenizer

ODD_NAMES = ["  two  spaces ", "tab\tinside", "Kyōryū Sentai", "ﬁne ligature", "ＦＵＬＬ width",
             "emoji 🙂", "trailing ", " leading", "a_b-c/d", "line\nbreak", "Canal+", "Zoë"]


def _round_trip_failures(tokenizer, names):
    bad = []
    for name, ids in zip(names, tokenizer(names, add_special_tokens=False)["input_ids"], strict=True):
        if tokenizer.decode(ids, skip_special_tokens=True) != name:
            bad.append(name)
    return bad


@pytest.fixture(scope="module")
def toy_kg():
    triples = [(ODD_NAMES[i], "rel", ODD_NAMES[(i + 1) % len(ODD_NAMES)]) for i in range(len(ODD_NAMES))]
    return KnowledgeGraph.from_triples(train=triples, valid=triples[:2], test=triples[2:4], name="odd")


def test_odd_names_round_trip_and_folder_loads(toy_kg, tmp_path):
    tokenizer = train_tokenizer(toy_kg, config=TokenizerConfig(vocab_size=400), output_dir=tmp_path)
    for loaded in (tokenizer, load_tokenizer(tmp_path)):
        assert _round_trip_failures(loaded, toy_kg.entity_names) == []
        assert (loaded.pad_token_id, loaded.eos_token_id, loaded.unk_token_id) == (0, 1, 2)
    assert (tmp_path / "spiece.model").exists() and (tmp_path / "tokenizer.json").exists()


def test_special_tokens_are_single_pieces(toy_kg):
    tokenizer = train_tokenizer(toy_kg, config=TokenizerConfig(vocab_size=400))
    ids = tokenizer(" ".join(SPECIAL_TOKENS), add_special_tokens=False)["input_ids"]
    assert tokenizer.convert_ids_to_tokens(ids) == list(SPECIAL_TOKENS)


def test_encode_targets_appends_eos_without_bos(toy_kg):
    tokenizer = train_tokenizer(toy_kg, config=TokenizerConfig(vocab_size=400))
    targets = encode_targets(tokenizer, toy_kg.entity_names)
    assert len(targets) == toy_kg.num_entities
    for name, ids in zip(toy_kg.entity_names, targets, strict=True):
        assert ids[-1] == tokenizer.eos_token_id and tokenizer.eos_token_id not in ids[:-1]
        assert tokenizer.decode(ids[:-1]) == name
    assert len({tuple(t) for t in targets}) == len(targets)


def test_encode_targets_rejects_names_the_tokenizer_merges(toy_kg, tmp_path):
    # transformers' own T5Tokenizer rebuilds the pipeline without byte fallback: unknown
    # characters become <unk>, so two names that differ only there collide.
    from transformers import T5Tokenizer

    train_tokenizer(toy_kg, config=TokenizerConfig(vocab_size=400), output_dir=tmp_path)
    lossy = T5Tokenizer.from_pretrained(str(tmp_path), extra_ids=0)
    with pytest.raises(KGT5MMError, match="cannot tell them apart"):
        encode_targets(lossy, ["zz ☃", "zz ☂"])


@pytest.mark.parametrize("name", ["a </s> b", "pad<pad>", "x <nbr> y"])
def test_encode_targets_rejects_special_and_marker_text_in_names(toy_kg, name):
    # "</s>" would end the name early, "<pad>" hide from the loss, "<nbr>" lose its spaces
    tokenizer = train_tokenizer(toy_kg, config=TokenizerConfig(vocab_size=400))
    with pytest.raises(KGT5MMError, match=r"entity name .* \(index 1\) contains the reserved token"):
        encode_targets(tokenizer, ["fine", name])


def test_a_pretrained_tokenizer_gets_the_context_markers_as_single_tokens(toy_kg, tmp_path):
    bare = train_tokenizer(toy_kg, config=TokenizerConfig(vocab_size=400), special_tokens=(),
                           output_dir=tmp_path / "bare")
    assert len(bare(SPECIAL_TOKENS[0], add_special_tokens=False)["input_ids"]) > 1
    tokenizer = train_tokenizer(toy_kg, config=TokenizerConfig(pretrained=str(tmp_path / "bare")),
                                output_dir=tmp_path / "run")
    for loaded in (tokenizer, load_tokenizer(tmp_path / "run")):
        ids = loaded(" ".join(SPECIAL_TOKENS), add_special_tokens=False)["input_ids"]
        assert loaded.convert_ids_to_tokens(ids) == list(SPECIAL_TOKENS)
        assert len(loaded) == len(bare) + len(SPECIAL_TOKENS)


def test_all_wn9_img_names_round_trip():
    kg = load_graph("wn9_img")
    tokenizer = train_tokenizer(kg, config=TokenizerConfig(vocab_size=8000))
    assert _round_trip_failures(tokenizer, kg.entity_names) == []
    encode_targets(tokenizer, kg.entity_names)  # raises on any collision


@pytest.mark.shared_data
@pytest.mark.parametrize("dataset", ["mkg_w", "mkg_y"])
def test_all_mkg_names_round_trip(shared_data_dir, dataset):
    kg = load_graph(dataset, data_dir=shared_data_dir)
    # names and relation texts only (fast); the round trip comes from the settings, not the corpus
    config = TokenizerConfig(vocab_size=8000, use_descriptions=False, use_vlm_text=False)
    tokenizer = train_tokenizer(kg, config=config)
    assert _round_trip_failures(tokenizer, kg.entity_names) == []
    targets = encode_targets(tokenizer, kg.entity_names)
    assert len({tuple(t) for t in targets}) == kg.num_entities

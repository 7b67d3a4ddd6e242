"""Tests of the KnowledgeGraph, its indexes and the embedded WN9-IMG (no shared data needed)."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

from kgt5mm.data import KnowledgeGraph, load_graph
from kgt5mm.data.indexes import FilterIndex, NeighbourIndex
from kgt5mm.data.names import definition_hints, disambiguate_names
from kgt5mm.data.registry import TINY_SEEDS
from kgt5mm.errors import DatasetNotFoundError, KGT5MMError


@pytest.fixture(scope="module")
def wn9() -> KnowledgeGraph:
    return load_graph("wn9_img")


@pytest.fixture(scope="module")
def tiny() -> KnowledgeGraph:
    return load_graph("wn9_img_tiny")


def random_graph(seed: int, E: int = 30, R: int = 4, n: int = 150) -> KnowledgeGraph:
    rng = np.random.default_rng(seed)
    triples = np.stack(
        [rng.integers(0, E, n), rng.integers(0, R, n), rng.integers(0, E, n)], axis=1
    )
    triples = np.concatenate([triples, triples[:5]])  # duplicates must not break anything
    return KnowledgeGraph(
        name="random",
        entity_ids=[f"e{i}" for i in range(E)],
        entity_names=[f"entity {i}" for i in range(E)],
        relation_ids=[f"r{i}" for i in range(R)],
        relation_texts=[f"rel {i}" for i in range(R)],
        splits={"train": triples[:100], "valid": triples[100:130], "test": triples[130:]},
    )


# ---------------------------------------------------------------- embedded WN9-IMG
def test_wn9_counts(wn9: KnowledgeGraph) -> None:
    assert (wn9.num_entities, wn9.num_relations) == (6555, 9)
    assert [len(wn9.splits[s]) for s in ("train", "valid", "test")] == [11741, 1337, 1319]
    assert wn9.num_query_relations == 18
    assert wn9.source == "embedded"


def test_wn9_names_unique_and_round_trip(wn9: KnowledgeGraph) -> None:
    assert len(set(wn9.entity_names)) == wn9.num_entities
    for index, name in enumerate(wn9.entity_names):
        assert wn9.entity_index(name) == index
    assert wn9.shared_name_count == 272


def test_wn9_homonyms_are_readable(wn9: KnowledgeGraph) -> None:
    saddles = sorted(n for n in wn9.entity_names if n.startswith("saddle ("))
    assert saddles == ["saddle (bicycle)", "saddle (horse)"]
    # every disambiguated name keeps its raw name as prefix
    for raw, name in zip(wn9.raw_entity_names, wn9.entity_names, strict=True):
        assert name == raw or name.startswith(raw + " (")
    with pytest.raises(KeyError, match="no entity named 'saddle'"):
        wn9.entity_index("saddle")


def test_wn9_text_relations_and_images(wn9: KnowledgeGraph) -> None:
    cat = wn9.entity_index("house cat")
    assert wn9.entity_ids[cat] == "n02121808"
    assert wn9.entity_descriptions is not None and wn9.entity_descriptions[cat]
    assert len(wn9.relation_texts) == 18 and len(set(wn9.relation_texts)) == 18
    hypernym = wn9.relation_ids.index("_hypernym")
    assert wn9.relation_texts[hypernym] == "hypernym"
    assert wn9.relation_texts[hypernym + 9] == "reverse of hypernym"
    assert wn9.entity_images is not None
    with_images = [i for i, paths in enumerate(wn9.entity_images) if paths]
    assert sorted(wn9.entity_ids[i] for i in with_images) == sorted(TINY_SEEDS)
    for i in with_images:
        assert all(Path(p).is_file() for p in wn9.entity_images[i])
    assert wn9.entity_images[cat][0].endswith("n02121808_house_cat.png")


def test_wn9_queries_convention(wn9: KnowledgeGraph) -> None:
    test = wn9.splits["test"]
    queries = wn9.queries("test")
    n, R = len(test), wn9.num_relations
    assert queries.shape == (2 * n, 3) and queries.dtype == np.int64
    np.testing.assert_array_equal(queries[:n], test)
    np.testing.assert_array_equal(queries[n:, 0], test[:, 2])
    np.testing.assert_array_equal(queries[n:, 1], test[:, 1] + R)
    np.testing.assert_array_equal(queries[n:, 2], test[:, 0])


def test_tiny_subgraph(wn9: KnowledgeGraph, tiny: KnowledgeGraph) -> None:
    assert 100 <= tiny.num_entities <= 300
    assert all(len(tiny.splits[s]) > 0 for s in ("valid", "test"))
    assert set(TINY_SEEDS) <= set(tiny.entity_ids)
    train = tiny.splits["train"]
    seen = set(train[:, 0].tolist()) | set(train[:, 2].tolist())
    for split in ("valid", "test"):
        assert set(tiny.splits[split][:, [0, 2]].ravel().tolist()) <= seen
    # original split membership is kept: each tiny triple maps to a triple of the same split
    for split in ("train", "valid", "test"):
        full = {tuple(t) for t in wn9.splits[split].tolist()}
        for h, r, t in tiny.splits[split].tolist():
            mapped = (
                wn9.entity_index_by_id(tiny.entity_ids[h]),
                r,
                wn9.entity_index_by_id(tiny.entity_ids[t]),
            )
            assert mapped in full
    # all full-graph triples among the chosen entities are kept
    chosen = {wn9.entity_index_by_id(e) for e in tiny.entity_ids}
    inside = sum(1 for h, _, t in wn9.splits["train"].tolist() if h in chosen and t in chosen)
    assert inside == len(train)
    again = load_graph("wn9_img_tiny")
    assert again.entity_ids == tiny.entity_ids
    np.testing.assert_array_equal(again.splits["test"], tiny.splits["test"])
    assert sum(1 for p in tiny.entity_images if p) == 11


# ---------------------------------------------------------------- indexes vs brute force
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_filter_index_matches_brute_force(seed: int) -> None:
    kg = random_graph(seed)
    E, R = kg.num_entities, kg.num_relations
    expected: dict[tuple[int, int], set[int]] = {}
    for split in ("train", "valid", "test"):
        for h, r, t in kg.splits[split].tolist():
            expected.setdefault((h, r), set()).add(t)
            expected.setdefault((t, r + R), set()).add(h)
    index = kg.filter_index
    assert len(index) == sum(len(v) for v in expected.values())
    for e, q in itertools.product(range(E), range(2 * R)):
        answers = index.answers(e, q)
        assert answers.tolist() == sorted(expected.get((e, q), set()))
    entities = np.repeat(np.arange(E), 2 * R)
    queries = np.tile(np.arange(2 * R), E)
    candidates = np.arange(E)[None, :]
    known = index.is_known(entities[:, None], queries[:, None], candidates)
    assert known.shape == (E * 2 * R, E)
    brute = np.array(
        [
            [c in expected.get((e, q), set()) for c in range(E)]
            for e, q in zip(entities, queries, strict=True)
        ]
    )
    np.testing.assert_array_equal(known, brute)
    counts = index.num_answers(entities, queries)
    np.testing.assert_array_equal(
        counts, [len(expected.get((e, q), set())) for e, q in zip(entities, queries, strict=True)])


def test_filter_index_unknown_query_and_empty() -> None:
    index = FilterIndex([np.zeros((0, 3), np.int64)], num_entities=3, num_relations=2)
    assert len(index) == 0
    assert index.answers(0, 1).tolist() == []
    assert index.num_answers(np.array([0, 1]), np.array([0, 3])).tolist() == [0, 0]
    assert not index.is_known(np.array([0, 1]), np.array([0, 3]), np.array([1, 2])).any()


@pytest.mark.parametrize("seed", [0, 3])
def test_neighbour_index_matches_brute_force(seed: int) -> None:
    kg = random_graph(seed)
    E, R = kg.num_entities, kg.num_relations
    train = kg.splits["train"]
    index = kg.neighbours
    assert index.indptr.shape == (E + 1,)
    assert len(index) == 2 * len(train)
    for e in range(E):
        rels, nbrs, edges = index.of(e)
        got = sorted(zip(rels.tolist(), nbrs.tolist(), edges.tolist(), strict=True))
        want = sorted(
            [(r, t, i) for i, (h, r, t) in enumerate(train.tolist()) if h == e]
            + [(r + R, h, i) for i, (h, r, t) in enumerate(train.tolist()) if t == e]
        )
        assert got == want
        # sorted by query relation, then by edge, inside a row
        assert list(zip(rels.tolist(), edges.tolist(), strict=True)) == sorted(
            zip(rels.tolist(), edges.tolist(), strict=True)
        )
        assert index.degree(e) == len(want)
    # only train edges
    valid_only = {tuple(t) for t in kg.splits["valid"].tolist()} - {
        tuple(t) for t in train.tolist()
    }
    for h, r, t in valid_only:
        rels, nbrs, _ = index.of(h)
        assert not np.any((rels == r) & (nbrs == t))


def test_neighbour_index_isolated_entity() -> None:
    index = NeighbourIndex(np.array([[0, 0, 1]]), num_entities=3, num_relations=1)
    assert [a.tolist() for a in index.of(2)] == [[], [], []]
    assert [a.tolist() for a in index.of(1)] == [[1], [0], [0]]


# ---------------------------------------------------------------- construction helpers
def test_from_triples_and_subgraph() -> None:
    kg = KnowledgeGraph.from_triples(
        train=[("cat", "is a", "animal"), ("dog", "is a", "animal"), ("cat", "likes", "fish")],
        valid=[("cat", "likes", "dog")],
        test=[("dog", "likes", "cat")],
        descriptions={"cat": "a small feline"},
        relation_texts={"is a": "is a kind of"},
        inverse_relation_texts={"is a": "has the kind"},
    )
    assert kg.entity_ids == ["cat", "animal", "dog", "fish"]
    assert kg.relation_texts == ["is a kind of", "likes", "has the kind", "reverse of likes"]
    assert kg.entity_descriptions == ["a small feline", "", "", ""]
    assert kg.filter_index.answers(kg.entity_index("cat"), 1).tolist() == [2, 3]
    sub = kg.subgraph([kg.entity_index("cat"), kg.entity_index("dog")])
    assert sub.entity_ids == ["cat", "dog"]
    assert len(sub.splits["train"]) == 0 and len(sub.splits["valid"]) == 1
    assert sub.relation_ids == kg.relation_ids
    with pytest.raises(KGT5MMError, match="empty head"):
        KnowledgeGraph.from_triples(train=[("", "r", "b")])


def test_duplicate_names_are_refused() -> None:
    with pytest.raises(KGT5MMError, match="used by entities 0 and 1"):
        KnowledgeGraph(
            name="bad",
            entity_ids=["a", "b"],
            entity_names=["x", "x"],
            relation_ids=["r"],
            relation_texts=["r"],
            splits={"train": np.array([[0, 0, 1]])},
        )


def test_disambiguate_names_is_one_to_one() -> None:
    names = ["bass", "bass", "bass (fish)", "cat", "bass"]
    ids = ["n1", "n2", "n3", "n4", "n5"]
    hints = [["fish"], ["voice"], [], [], ["fish", "fish tail"]]
    result = disambiguate_names(names, ids=ids, hints=hints)
    assert len(set(result)) == len(result)
    assert result[3] == "cat" and result[2] == "bass (fish)"
    assert result[1] == "bass (voice)"
    assert result == disambiguate_names(names, ids=ids, hints=hints)  # deterministic
    assert definition_hints("the lowest part of the musical range") == [
        "lowest",
        "lowest part",
        "lowest part of the musical",
        "lowest part of the musical range",
    ]


def test_unknown_dataset_and_missing_data_dir(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("KGT5MM_DATA_DIR", raising=False)
    with pytest.raises(DatasetNotFoundError, match="KGT5MM_DATA_DIR") as info:
        load_graph("mkg_w")
    assert "data_dir" in str(info.value) and "github.com/zjukg/MyGO" in str(info.value)
    with pytest.raises(DatasetNotFoundError, match="searched"):
        load_graph("mkg_y", data_dir=tmp_path)
    with pytest.raises(DatasetNotFoundError, match="neither a registered dataset"):
        load_graph("no_such_dataset")

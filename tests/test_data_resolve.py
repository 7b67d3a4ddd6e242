"""Resolving user-typed entities and relations: names, external ids, indexes, inverses."""

from __future__ import annotations

import pytest

from kgt5mm.data import KnowledgeGraph, load_graph
from kgt5mm.errors import KGT5MMError


@pytest.fixture(scope="module")
def kg():
    return load_graph("wn9_img_tiny")


def test_entity_by_name_external_id_and_index_agree(kg):
    e = kg.entity_index("house cat")
    assert kg.resolve_entity("house cat") == e
    assert kg.resolve_entity(kg.entity_ids[e]) == e
    assert kg.resolve_entity(e) == e
    assert kg.resolve_entity(str(e)) == e


def test_unknown_or_out_of_range_entity_is_a_clear_error(kg):
    with pytest.raises(KGT5MMError, match="unknown entity 'no such thing'"):
        kg.resolve_entity("no such thing")
    with pytest.raises(KGT5MMError, match="outside"):
        kg.resolve_entity(kg.num_entities)
    # "\u00b2" (superscript two) passes str.isdigit() but int() refuses it
    for text in ("\u00b2", "1_0"):
        with pytest.raises(KGT5MMError, match="unknown entity"):
            kg.resolve_entity(text)


def test_a_name_that_is_another_entitys_id_is_refused():
    import numpy as np

    toy = KnowledgeGraph(name="toy", entity_ids=["a", "b", "c"], entity_names=["b", "x", "c"],
                         relation_ids=["r"], relation_texts=["r"],
                         splits={"train": np.array([[0, 0, 1], [1, 0, 2]])})
    with pytest.raises(KGT5MMError, match="name of entity .* and the id of entity"):
        toy.resolve_entity("b")


def test_query_relation_forms_and_inverse(kg):
    R = kg.num_relations
    q = kg.resolve_query_relation("_hypernym")
    assert 0 <= q < R
    assert kg.resolve_query_relation(kg.relation_texts[q]) == q
    assert kg.resolve_query_relation(kg.relation_texts[q + R]) == q + R
    assert kg.resolve_query_relation("_hypernym", inverse=True) == q + R
    assert kg.resolve_query_relation(str(q + R)) == q + R
    with pytest.raises(KGT5MMError, match="already inverse"):
        kg.resolve_query_relation(q + R, inverse=True)
    with pytest.raises(KGT5MMError, match="unknown relation"):
        kg.resolve_query_relation("_no_such_relation")
    with pytest.raises(KGT5MMError, match="outside"):
        kg.resolve_query_relation(2 * R)

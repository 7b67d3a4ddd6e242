"""Tests of the context builder: golden strings, edge exclusion, budget, determinism."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from kgt5mm.context import (
    CaptionRecord,
    CaptionStore,
    ContextBuilder,
    ContextConfig,
    relation_relevance,
)
from kgt5mm.data import KnowledgeGraph, load_graph
from kgt5mm.errors import ConfigError

TOY_TRAIN = [
    ("cat", "hypernym", "feline"),
    ("feline", "hyponym", "cat"),
    ("lion", "hypernym", "feline"),
    ("feline", "hyponym", "lion"),
    ("tiger", "hypernym", "feline"),
    ("cat", "part", "whisker"),
    ("dog", "hypernym", "canine"),
    ("canine", "hyponym", "dog"),
]
TOY_DESCRIPTIONS = {
    "cat": "A small domesticated carnivore. Kept as a pet.",
    "feline": "Any animal of the cat family.",
}


@pytest.fixture(scope="module")
def toy() -> KnowledgeGraph:
    return KnowledgeGraph.from_triples(
        train=TOY_TRAIN, valid=[("tiger", "part", "whisker")], descriptions=TOY_DESCRIPTIONS,
        vlm_text={"cat": "A grey cat lies on a sofa."},
    )


@pytest.fixture(scope="module")
def tiny() -> KnowledgeGraph:
    return load_graph("wn9_img_tiny")


@pytest.fixture(scope="module")
def bpe_counter(tiny):
    """A real subword counter: byte-level BPE trained on the tiny graph's text (offline)."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    from kgt5mm.context import SPECIAL_TOKENS

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=["<unk>", *SPECIAL_TOKENS],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    corpus = list(tiny.entity_names) + list(tiny.relation_texts) + list(tiny.entity_descriptions)
    tok.train_from_iterator(corpus, trainer=trainer)
    return lambda text: len(tok.encode(text).ids)


def _key(kg, name):
    return kg.entity_index(name)


def test_golden_strings(toy):
    builder = ContextBuilder(toy, ContextConfig(num_examples=1))
    cat, hypernym, R = _key(toy, "cat"), toy.relation_ids.index("hypernym"), toy.num_relations
    feline = _key(toy, "feline")
    # evaluation: feline is a known train answer of (cat, hypernym), so edges to it are dropped
    assert builder.build(cat, hypernym) == (
        "<query> cat <rel> hypernym <nbr> part whisker"
        " <desc> A small domesticated carnivore. Kept as a pet. <vlm> A grey cat lies on a sofa."
        " <ex> dog <rel> hypernym canine"
    )
    # training on (cat, hypernym, feline) = train row 0: that edge is excluded, so feline is no
    # longer "another" known answer and the inverse triple (feline hyponym cat, row 1) is the
    # most relevant evidence, first in line
    assert builder.build(cat, hypernym, exclude_edge=0) == (
        "<query> cat <rel> hypernym <nbr> reverse of hyponym feline <nbr> part whisker"
        " <desc> A small domesticated carnivore. Kept as a pet. <vlm> A grey cat lies on a sofa."
        " <ex> dog <rel> hypernym canine"
    )
    # inverse query (?, hypernym, feline) has its own wording; its other answers are dropped
    assert builder.build(feline, hypernym + R) == (
        "<query> feline <rel> reverse of hypernym <desc> Any animal of the cat family."
        " <ex> canine <rel> reverse of hypernym dog"
    )
    no_drop = ContextBuilder(toy, ContextConfig(num_examples=0, drop_known_answers=False,
                                                include_description=False, include_vlm_text=False))
    assert no_drop.build(feline, hypernym + R) == (
        "<query> feline <rel> reverse of hypernym <nbr> reverse of hypernym cat"
        " <nbr> reverse of hypernym tiger <nbr> reverse of hypernym lion"
        " <nbr> hyponym cat <nbr> hyponym lion"
    )
    # a 12-word budget: whole pieces by priority (query, best edges); the description's first
    # sentence and the example do not fit and are left out whole
    small = ContextBuilder(toy, ContextConfig(num_examples=1, budget_tokens=12))
    assert small.build(cat, hypernym, exclude_edge=0) == (
        "<query> cat <rel> hypernym <nbr> reverse of hyponym feline <nbr> part whisker"
    )


def test_a_duplicated_train_triple_never_shows_in_its_own_context():
    # (cat, hypernym, feline) twice, rows 0 and 8: training on either row excludes both
    dup = KnowledgeGraph.from_triples(train=[*TOY_TRAIN, ("cat", "hypernym", "feline")],
                                      valid=[("tiger", "part", "whisker")])
    cat, hypernym = _key(dup, "cat"), dup.relation_ids.index("hypernym")
    plain = ContextBuilder(dup, ContextConfig(num_examples=0, drop_known_answers=False))
    for row in (0, 8):
        assert "<nbr> hypernym feline" in plain.build(cat, hypernym)  # evaluation: no exclusion
        assert "<nbr> hypernym feline" not in plain.build(cat, hypernym, exclude_edge=row)
    # with the default drop_known_answers, feline is not "another" answer: its inverse twin stays
    default = ContextBuilder(dup, ContextConfig(num_examples=0))
    assert default.build(cat, hypernym, exclude_edge=8) == default.build(cat, hypernym, exclude_edge=0) == (
        "<query> cat <rel> hypernym <nbr> reverse of hyponym feline <nbr> part whisker")
    with pytest.raises(ValueError, match="not a train row index"):
        default.build(cat, hypernym, exclude_edge=9)


def test_relevance_ranks_the_inverse_relation_first(tiny):
    scores = relation_relevance(tiny)
    R = tiny.num_relations
    hypernym, hyponym = tiny.relation_ids.index("_hypernym"), tiny.relation_ids.index("_hyponym")
    assert scores.shape == (2 * R, 2 * R)
    # the relation itself scores ~1 (its other answers; dropped by drop_known_answers); of the
    # other relations, the inverse of hyponym is where the answer of a hypernym query sits
    off_diagonal = scores[hypernym].copy()
    off_diagonal[hypernym] = -1
    assert int(np.argmax(off_diagonal)) == hyponym + R
    assert scores[hypernym, hyponym + R] > 0.5


def test_query_edge_never_in_its_own_context(tiny):
    """For every training example (both directions), the query triple's own edge is excluded.

    Interpretation: the train row of the query triple appears neither as (h, r, t) in the head's
    neighbour list nor as its own inverse entry (t, r^-1, h); the answer entity may still appear
    through *other* edges (another relation, or the inverse triple stored as its own train row).
    """
    builder = ContextBuilder(tiny, ContextConfig(drop_known_answers=False, max_neighbours=1000,
                                                 budget_tokens=10_000))
    train = tiny.splits["train"]
    queries = tiny.queries("train")
    rows = np.concatenate([np.arange(len(train)), np.arange(len(train))])
    checked = 0
    for (entity, q, _answer), row in zip(queries.tolist(), rows.tolist(), strict=True):
        built = builder.select(entity, q, exclude_edge=row)
        assert row not in built.edges
        assert row not in built.examples
        own = [(qq, n) for qq, n, e in zip(built.query_relations, built.neighbours, built.edges,
                                           strict=True) if e == row]
        assert not own
        with_it = builder.select(entity, q)  # evaluation mode keeps the edge: the test can fail
        assert row in with_it.edges
        checked += 1
    assert checked == 2 * len(train)


@pytest.mark.parametrize("budget", [1, 3, 6, 12, 25, 60, 200])
def test_budget_never_exceeded(tiny, bpe_counter, budget):
    queries = tiny.queries("valid")
    for counter in (None, bpe_counter):
        builder = ContextBuilder(tiny, ContextConfig(budget_tokens=budget), count_tokens=counter)
        count = counter or (lambda s: len(s.split()))
        for entity, q, _ in queries.tolist():
            built = builder.select(entity, q)
            assert count(built.text) == built.num_tokens <= budget, built.text


def test_budget_drops_least_relevant_parts_first(tiny, bpe_counter):
    entity, q, _ = tiny.queries("valid")[0].tolist()
    big = ContextBuilder(tiny, ContextConfig(budget_tokens=10_000), count_tokens=bpe_counter).select(entity, q)
    small = ContextBuilder(tiny, ContextConfig(budget_tokens=big.num_tokens // 2),
                           count_tokens=bpe_counter).select(entity, q)
    # the kept neighbours are a prefix of the full ranking: nothing was cut from the front
    assert big.neighbours[: len(small.neighbours)] == small.neighbours
    assert small.text.startswith("<query>")
    assert not small.text.endswith(" ")


def test_same_seed_same_string_across_processes(tiny):
    queries = tiny.queries("test")[:40]
    cfg = ContextConfig(seed=7, neighbour_selection="random", num_examples=3)
    here = ContextBuilder(tiny, cfg).build_many(queries, epoch=3)
    assert here == ContextBuilder(tiny, cfg).build_many(queries, epoch=3)
    code = (
        "import json; from kgt5mm.data import load_graph; "
        "from kgt5mm.context import ContextBuilder, ContextConfig; "
        "kg = load_graph('wn9_img_tiny'); "
        "b = ContextBuilder(kg, ContextConfig(seed=7, neighbour_selection='random', num_examples=3)); "
        "print(json.dumps(b.build_many(kg.queries('test')[:40], epoch=3)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={"PYTHONHASHSEED": "12345", "PATH": ""})
    import json

    assert json.loads(out.stdout) == here
    other_epoch = ContextBuilder(tiny, cfg).build_many(queries, epoch=4)
    other_seed = ContextBuilder(tiny, ContextConfig(seed=8, neighbour_selection="random",
                                                    num_examples=3)).build_many(queries, epoch=3)
    assert other_epoch != here and other_seed != here


def test_dedupe_neighbours(toy):
    cfg = ContextConfig(num_examples=0, drop_known_answers=False, include_description=False,
                        include_vlm_text=False, dedupe_neighbours=True)
    feline, hypernym = _key(toy, "feline"), toy.relation_ids.index("hypernym")
    built = ContextBuilder(toy, cfg).select(feline, hypernym + toy.num_relations)
    assert sorted(built.neighbours) == sorted({_key(toy, n) for n in ("cat", "lion", "tiger")})
    assert built.text == ("<query> feline <rel> reverse of hypernym <nbr> reverse of hypernym cat"
                          " <nbr> reverse of hypernym tiger <nbr> reverse of hypernym lion")


def test_drop_known_answers(tiny):
    builder = ContextBuilder(tiny, ContextConfig(max_neighbours=1000, budget_tokens=10_000))
    for entity, q, _ in tiny.queries("train").tolist()[:200]:
        built = builder.select(entity, q)
        known = set(tiny.neighbours.of(entity)[1][tiny.neighbours.of(entity)[0] == q].tolist())
        assert not known & set(built.neighbours)


def test_captions_follow_their_neighbour(toy):
    store = CaptionStore.from_records(
        [CaptionRecord(kind="link", entities=("feline", "cat"), text="The cat is a feline."),
         CaptionRecord(kind="description", entities=("cat",), text="Store text wins.")], toy)
    builder = ContextBuilder(toy, ContextConfig(num_examples=0), captions=store)
    text = builder.build(_key(toy, "cat"), toy.relation_ids.index("hypernym"), exclude_edge=0)
    assert "<nbr> reverse of hyponym feline <cap> The cat is a feline. <nbr> part whisker" in text
    assert "<vlm> Store text wins." in text
    off = ContextBuilder(toy, ContextConfig(num_examples=0, include_captions=False,
                                            include_vlm_text=False), captions=store)
    assert "<cap>" not in off.build(_key(toy, "cat"), 0) and "<vlm>" not in off.build(_key(toy, "cat"), 0)


def test_build_many_matches_build(tiny):
    builder = ContextBuilder(tiny, ContextConfig())
    queries = tiny.queries("train")[:50]
    rows = np.arange(50)
    assert builder.build_many(queries, exclude_edges=rows, epoch=1) == [
        builder.build(e, q, exclude_edge=r, epoch=1) for (e, q, _), r in zip(queries.tolist(), rows, strict=True)
    ]


def test_config_validation_and_roundtrip():
    with pytest.raises(ConfigError):
        ContextConfig(neighbour_selection="best")
    with pytest.raises(ConfigError):
        ContextConfig(budget_tokens=0)
    with pytest.raises(ConfigError):
        ContextConfig.from_dict({"budget": 3})
    with pytest.raises(ConfigError):
        ContextConfig(layout_prompt_version=99).resolved()
    cfg = ContextConfig(seed=3).resolved()
    assert cfg.layout_prompt_version == 1
    assert ContextConfig.from_dict(cfg.to_dict()) == cfg


@pytest.mark.parametrize("mode", ["relevance", "random"])
@pytest.mark.parametrize("dedupe", [False, True])
@pytest.mark.parametrize(("hide", "show"), [(False, 0), (True, 0), (True, 2), (False, 3)])
def test_python_and_numpy_ranking_paths_agree(tiny, mode, dedupe, hide, show):
    cfg = ContextConfig(neighbour_selection=mode, budget_tokens=10_000, max_neighbours=7,
                        dedupe_neighbours=dedupe, hide_other_candidates=hide,
                        show_train_answers=show)
    small, hub = ContextBuilder(tiny, cfg), ContextBuilder(tiny, cfg)
    small._small_degree, hub._small_degree = 10**9, -1
    queries = tiny.queries("train")
    rows = np.concatenate([np.arange(len(tiny.splits["train"]))] * 2)
    assert small.build_many(queries, exclude_edges=rows, epoch=2) == hub.build_many(
        queries, exclude_edges=rows, epoch=2)
    assert small.build_many(queries) == hub.build_many(queries)


def test_context_show_prints_the_exact_string(tiny, capsys):
    from kgt5mm.cli import main

    entity, q, _ = tiny.queries("test")[0].tolist()
    R = tiny.num_relations
    relation = tiny.relation_ids[q % R]
    args = ["context", "show", "wn9_img_tiny", "--head", tiny.entity_names[entity],
            "--relation", relation, "--budget", "40"]
    if q >= R:
        args.append("--inverse")
    assert main(args) == 0
    expected = ContextBuilder(tiny, ContextConfig(budget_tokens=40)).build(entity, q)
    assert capsys.readouterr().out == expected + "\n"
    assert main(["context", "show", "wn9_img_tiny", "--head", tiny.entity_ids[entity], "--relation",
                 str(q), "--set", "neighbour_selection=random", "--set", "num_examples=0"]) == 0
    expected = ContextBuilder(tiny, ContextConfig(neighbour_selection="random", num_examples=0)).build(entity, q)
    assert capsys.readouterr().out == expected + "\n"
    assert main(["context", "show", "wn9_img_tiny", "--head", "no such entity", "--relation", relation]) == 2


@pytest.mark.parametrize("mode", ["relevance", "random"])
def test_hide_other_candidates_in_training_only(tiny, mode):
    """Training contexts keep the answer but no other neighbour whose relation predicts q."""
    from kgt5mm.context import relation_relevance

    relevance = relation_relevance(tiny)
    cfg = dict(neighbour_selection=mode, budget_tokens=10_000, max_neighbours=1000)
    plain = ContextBuilder(tiny, ContextConfig(**cfg))
    hiding = ContextBuilder(tiny, ContextConfig(**cfg, hide_other_candidates=True, candidate_confidence=0.5))
    queries = tiny.queries("train").tolist()
    rows = np.concatenate([np.arange(len(tiny.splits["train"]))] * 2).tolist()
    hidden_somewhere = 0
    for (entity, q, answer), row in zip(queries, rows, strict=True):
        before = plain.select(entity, q, exclude_edge=row)
        after = hiding.select(entity, q, exclude_edge=row)
        hidden = [(n, qq) for n, qq in zip(before.neighbours, before.query_relations, strict=True)
                  if n != answer and relevance[q, qq] >= 0.5]
        hidden_somewhere += bool(hidden)
        expected = [(n, qq) for n, qq in zip(before.neighbours, before.query_relations, strict=True)
                    if (n, qq) not in hidden]
        assert sorted(zip(after.neighbours, after.query_relations, strict=True)) == sorted(expected)
        assert (answer in after.neighbours) == (answer in before.neighbours)
    assert hidden_somewhere > 0  # the rule has something to hide on the tiny graph
    # evaluation contexts (no exclude_edge) are unchanged
    test = tiny.queries("test").tolist()
    assert [hiding.build(e, q) for e, q, _ in test] == [plain.build(e, q) for e, q, _ in test]


@pytest.mark.parametrize("hide", [False, True])
def test_show_train_answers_lists_other_train_answers_like_held_out_ones(tiny, hide):
    """Up to k other train answers appear, through edges of other relations only; seeded."""
    k = 2
    cfg = dict(budget_tokens=10_000, max_neighbours=1000, hide_other_candidates=hide)
    plain = ContextBuilder(tiny, ContextConfig(**cfg))
    showing = ContextBuilder(tiny, ContextConfig(**cfg, show_train_answers=k))
    train = tiny.splits["train"].tolist()
    R = tiny.num_relations
    answers_of: dict[tuple[int, int], set[int]] = {}
    for h, r, t in train:
        answers_of.setdefault((h, r), set()).add(t)
        answers_of.setdefault((t, r + R), set()).add(h)
    queries = tiny.queries("train").tolist()
    rows = np.concatenate([np.arange(len(train))] * 2).tolist()
    listed_somewhere = 0
    for (entity, q, answer), row in zip(queries, rows, strict=True):
        before = plain.select(entity, q, exclude_edge=row, epoch=1)
        after = showing.select(entity, q, exclude_edge=row, epoch=1)
        others = answers_of[(entity, q)] - {answer}
        extra = [(n, qq) for n, qq in zip(after.neighbours, after.query_relations, strict=True)
                 if (n, qq) not in set(zip(before.neighbours, before.query_relations, strict=True))]
        assert all(n in others and qq != q for n, qq in extra)  # only other answers, never a q-edge
        assert len({n for n, _ in extra}) <= k
        assert set(before.neighbours) <= set(after.neighbours)
        listed_somewhere += bool(extra)
        again = showing.select(entity, q, exclude_edge=row, epoch=1)
        assert again.neighbours == after.neighbours  # seeded
    assert listed_somewhere > 0  # the tiny graph has one-to-many queries with inverse twins
    test = tiny.queries("test").tolist()
    assert [showing.build(e, q) for e, q, _ in test] == [plain.build(e, q) for e, q, _ in test]
    with pytest.raises(ConfigError, match="drop_known_answers"):
        ContextConfig(show_train_answers=1, drop_known_answers=False)
    with pytest.raises(ConfigError, match="show_train_answers"):
        ContextConfig(show_train_answers=-1)


def test_candidate_confidence_is_validated():
    with pytest.raises(ConfigError, match="candidate_confidence"):
        ContextConfig(candidate_confidence=0)


def test_mask_query_entity_leaves_the_name_out(tiny):
    """p=1 masks every source; 0<p<1 masks a seeded share of training sources, never evaluation."""
    cfg = dict(budget_tokens=10_000, max_neighbours=1000)
    plain = ContextBuilder(tiny, ContextConfig(**cfg))
    always = ContextBuilder(tiny, ContextConfig(**cfg, mask_query_entity=1.0))
    half = ContextBuilder(tiny, ContextConfig(**cfg, mask_query_entity=0.5))
    R = tiny.num_relations
    queries = tiny.queries("train").tolist()
    rows = np.concatenate([np.arange(len(tiny.splits["train"]))] * 2).tolist()
    masked_share = []
    for (entity, q, _), row in zip(queries, rows, strict=True):
        name, rel = tiny.entity_names[entity], tiny.relation_texts[q % R] if q < R else None
        before = plain.select(entity, q, exclude_edge=row, epoch=3)
        after = always.select(entity, q, exclude_edge=row, epoch=3)
        assert before.text.startswith(f"<query> {name} <rel> ")
        # the name is gone, nothing else changes (neighbours, their order, the rest of the text)
        assert after.text == "<query> <rel> " + before.text[len(f"<query> {name} <rel> "):]
        assert after.neighbours == before.neighbours
        if rel is not None:
            assert after.text.startswith(f"<query> <rel> {rel}")
        drawn = half.select(entity, q, exclude_edge=row, epoch=3).text
        assert drawn in (after.text, before.text)
        assert half.select(entity, q, exclude_edge=row, epoch=3).text == drawn  # seeded
        masked_share.append(drawn == after.text)
    assert 0.3 < np.mean(masked_share) < 0.7
    test = tiny.queries("test").tolist()
    assert [half.build(e, q) for e, q, _ in test] == [plain.build(e, q) for e, q, _ in test]
    assert all(always.build(e, q).startswith("<query> <rel> ") for e, q, _ in test)
    for bad in (-0.1, 1.5):
        with pytest.raises(ConfigError, match="mask_query_entity"):
            ContextConfig(mask_query_entity=bad)


def test_candidate_views_list_one_candidate_each(tiny):
    """build_candidate_views: one view per answer candidate (up to max_views), listing it alone."""
    relevance = relation_relevance(tiny)
    b = ContextBuilder(tiny, ContextConfig(budget_tokens=10_000, max_neighbours=1000))
    queries = tiny.queries("test")
    sources, owner, chosen = b.build_candidate_views(queries, 2)
    assert len(sources) == len(owner) == len(chosen)
    assert (np.diff(owner) >= 0).all()

    def split(ctx, q):
        edges = list(zip(ctx.neighbours, ctx.query_relations, strict=True))
        return ([n for n, qq in edges if relevance[q, qq] >= 0.5],
                [(n, qq) for n, qq in edges if relevance[q, qq] < 0.5])

    overflow = singles = 0
    for i, (e, q, _) in enumerate(queries.tolist()):
        mine = np.flatnonzero(owner == i)
        full = b.select(e, q)
        full_candidates, full_others = split(full, q)
        candidates = b.answer_candidates(e, q)
        assert candidates == list(dict.fromkeys(full_candidates))  # most relevant first, once each
        assert chosen[mine].tolist() == candidates[:2]
        if len(candidates) == 1:
            singles += 1
            assert [sources[j] for j in mine] == [full.text]  # nothing to hide
            continue
        overflow += len(candidates) > 2
        for c, j in zip(candidates[:2], mine.tolist(), strict=True):
            view = b.select(e, q, only_candidate=c)
            assert view.text == sources[j]
            listed, others = split(view, q)
            assert set(listed) == {c}
            assert others == full_others  # only the other candidates are hidden
    assert overflow > 0 and singles > 0
    with pytest.raises(ValueError, match="max_views"):
        b.build_candidate_views(queries, 0)
    with pytest.raises(ValueError, match="exclude_edge"):
        b.select(0, 0, exclude_edge=0, only_candidate=1)

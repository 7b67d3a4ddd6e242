"""The context builder: a query ``(entity, query_relation, ?)`` -> one source string.

The source string (layout: the versioned prompt ``context_source``) holds, in this order::

    <query> {head name} <rel> {relation verbalization}
    <nbr> {relation} {neighbour} <cap> {link-aware caption}   (most relevant first, repeated)
    <desc> {description sentences} <vlm> {VLM-written text}
    <ex> {head} <rel> {relation} {tail}                       (example triples of the relation)

Link-aware selection
--------------------
A neighbour edge ``(entity, q', n)`` of the train graph is scored for the query relation ``q``
by train statistics only (computed once, no model):

* pair confidence ``conf(q' => q) = |pairs joined by both q' and q| / (|pairs joined by q'| + 1)``
  over (entity, neighbour) pairs of the train graph: the share of q'-neighbours that are also
  q-answers, i.e. the probability that the neighbour *is* the answer (on WN9-IMG the inverse
  relation of the query scores highest, which is where the answer is 90% of the time);
* plus ``0.01 * P(q' | q)``, the entity-level co-occurrence (share of entities having a
  q-edge that also have a q'-edge), which orders neighbours that are never answers by how
  typical their relation is for entities that take part in ``q``.

Ties are broken by a per-query pseudo-random key, so equally relevant neighbours are sampled
afresh each epoch. ``neighbour_selection="random"`` uses that key alone (the ablation).

Token budget
------------
Pieces are filled by priority until ``budget_tokens`` is reached; a piece that does not fit is
left out whole (never blind right-truncation): the query; the ``priority_neighbours`` most
relevant neighbour edges; the description and VLM text, sentence by sentence; the captions of
the included neighbours; the remaining neighbour edges with their captions; the example triples.
The final string is counted again with ``count_tokens`` and the last-filled pieces are removed
until it fits, so it never exceeds the budget even for a tokenizer whose counts are not
additive. Without ``count_tokens``, tokens are whitespace-separated words. Only when the query
piece alone exceeds the budget are its last words cut (with a warning).

Determinism: all randomness comes from ``hash(seed, epoch, entity, query_relation)`` (no global
RNG), so a query gives the same string in every dataloader worker and process.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from kgt5mm.context.captions import CaptionStore
from kgt5mm.context.config import ContextConfig
from kgt5mm.context.prompts import load_prompt
from kgt5mm.errors import ConfigError

if TYPE_CHECKING:
    from kgt5mm.data import KnowledgeGraph

__all__ = ["ContextBuilder", "BuiltContext", "relation_relevance", "whitespace_count"]

logger = logging.getLogger(__name__)

_MASK64 = (1 << 64) - 1
_SENTENCE_SPLIT = re.compile(r"(?<=[.!?;])\s+")
#: weight of the entity-level co-occurrence next to the pair confidence
_COOCCURRENCE_WEIGHT = 0.01


def whitespace_count(text: str) -> int:
    """Fallback token counter: the number of whitespace-separated words."""
    return len(text.split())


def _mix(x: int) -> int:
    """splitmix64 finaliser on a Python int (64-bit)."""
    x = (x + 0x9E3779B97F4A7C15) & _MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK64
    return x ^ (x >> 31)


def _mix_np(x: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser on a uint64 array (wrapping arithmetic)."""
    x = x + np.uint64(0x9E3779B97F4A7C15)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


_MASK_SALT = 0x6D61736B  # salts the seed of mask_query_entity's per-query draw


def query_seed(seed: int, epoch: int, entity: int, query_relation: int) -> int:
    """64-bit seed of one query, a pure function of its arguments."""
    h = _mix(seed & _MASK64)
    for value in (epoch, entity, query_relation):
        h = _mix(h ^ (value & _MASK64))
    return h


def relation_relevance(kg: KnowledgeGraph) -> np.ndarray:
    """Relevance of a neighbour's query relation ``q'`` to the query relation ``q``.

    :returns: float64 ``(2R, 2R)``; entry ``[q, q']`` = ``conf(q' => q) + 0.01 * P(q' | q)``
        (see the module docstring), from the train graph only
    """
    nbr = kg.neighbours
    num_q = kg.num_query_relations
    num_e = kg.num_entities
    entity = np.repeat(np.arange(num_e, dtype=np.int64), np.diff(np.asarray(nbr.indptr)))
    qr = np.asarray(nbr.query_relation, dtype=np.int64)
    pair = entity * num_e + np.asarray(nbr.neighbour, dtype=np.int64)
    combined = np.unique(pair * num_q + qr)
    pair_u, qr_u = np.divmod(combined, num_q)
    pair_count = np.bincount(qr_u, minlength=num_q).astype(np.float64)
    co = np.zeros((num_q, num_q), dtype=np.float64)
    co[np.arange(num_q), np.arange(num_q)] = pair_count
    if len(pair_u):
        starts = np.flatnonzero(np.r_[True, pair_u[1:] != pair_u[:-1]])
        sizes = np.diff(np.append(starts, len(pair_u)))
        for start, size in zip(starts[sizes > 1].tolist(), sizes[sizes > 1].tolist(), strict=False):
            group = qr_u[start : start + size]
            for a in group.tolist():
                for b in group.tolist():
                    if a != b:
                        co[a, b] += 1.0
    conf = co / (pair_count[:, None] + 1.0)  # conf[q', q]
    has = np.zeros((num_e, num_q), dtype=np.float32)
    has[entity, qr] = 1.0
    ent_co = (has.T @ has).astype(np.float64)  # [q, q'] entities having both
    diag = np.diag(ent_co).copy()
    p_given = np.divide(ent_co, diag[:, None], out=np.zeros_like(ent_co), where=diag[:, None] > 0)
    return conf.T + _COOCCURRENCE_WEIGHT * p_given


@dataclass
class BuiltContext:
    """A built source string and what went into it (for inspection, tests and benchmarks).

    :ivar text: the source string
    :ivar num_tokens: its token count (``count_tokens`` or whitespace words)
    :ivar neighbours: entity ids of the included neighbour edges, in order
    :ivar edges: train row indices of the included neighbour edges, in order
    :ivar query_relations: query relations of the included neighbour edges (from the head)
    :ivar examples: train row indices of the included example triples
    """

    text: str
    num_tokens: int
    neighbours: list[int] = field(default_factory=list)
    edges: list[int] = field(default_factory=list)
    query_relations: list[int] = field(default_factory=list)
    examples: list[int] = field(default_factory=list)


class ContextBuilder:
    """Builds the source string of a query within a token budget (see the module docstring).

    :param kg: the knowledge graph (its train split defines neighbours and statistics)
    :param config: :class:`ContextConfig`
    :param count_tokens: ``str -> int`` token counter of the model's tokenizer; ``None`` counts
        whitespace words. Counts of pieces (names, sentences, edges) are cached.
    :param captions: a :class:`CaptionStore` (entity-level VLM text and link captions); ``None``
        loads ``config.caption_files`` if any, else uses ``kg.entity_vlm_text`` only and no link
        captions
    """

    def __init__(
        self,
        kg: KnowledgeGraph,
        config: ContextConfig | None = None,
        count_tokens: Callable[[str], int] | None = None,
        captions: CaptionStore | None = None,
    ) -> None:
        self.kg = kg
        self.config = (config or ContextConfig()).resolved()
        self.count_tokens = count_tokens or whitespace_count
        self.exact_counter = count_tokens is not None
        if captions is None and self.config.caption_files:
            captions = CaptionStore.from_files(self.config.caption_files, kg)
            logger.info("loaded %d entity texts and %d link captions from %s",
                        len(captions.entity_text), len(captions.link_text), self.config.caption_files)
        self.captions = captions
        self.layout = load_prompt(self.config.layout_prompt)
        parts = {name: self.layout.part(name) for name in
                 ("query", "neighbour", "caption", "description", "vlm_text", "example")}
        self._parts = parts
        self._names: list[str] = list(kg.entity_names)
        self._relation_texts: list[str] = list(kg.relation_texts)
        if len(self._relation_texts) != kg.num_query_relations:
            raise ConfigError(
                f"kg.relation_texts has {len(self._relation_texts)} entries, expected 2R = "
                f"{kg.num_query_relations}"
            )
        train = np.asarray(kg.splits["train"], dtype=np.int64).reshape(-1, 3)
        # Each train row -> the first row holding the same triple: excluding a query's row then
        # also excludes its duplicates, so the query triple never shows in its own context.
        if len(train):
            _, first, inverse = np.unique(train, axis=0, return_index=True, return_inverse=True)
            self._canonical_row = first[inverse.reshape(-1)]
        else:
            self._canonical_row = np.zeros(0, dtype=np.int64)
        nbr = kg.neighbours
        self._indptr: list[int] = np.asarray(nbr.indptr, dtype=np.int64).tolist()
        self._qr = np.asarray(nbr.query_relation, dtype=np.int64)
        self._nb = np.asarray(nbr.neighbour, dtype=np.int64)
        self._edge = self._canonical_row[np.asarray(nbr.edge, dtype=np.int64)]
        self._edge_u64 = self._edge.astype(np.uint64)
        self._qr_list: list[int] = self._qr.tolist()
        self._nb_list: list[int] = self._nb.tolist()
        self._edge_list: list[int] = self._edge.tolist()
        relevance = None
        if self.config.neighbour_selection == "relevance" or self.config.hide_other_candidates:
            relevance = relation_relevance(kg)
        self._relevance = relevance if self.config.neighbour_selection == "relevance" else None
        self._relevance_rows = None if self._relevance is None else self._relevance.tolist()
        #: [q, q'] True where a q'-neighbour counts as an answer candidate of q (hide_other_candidates,
        #: candidate views); built on first use when hiding is off
        self._candidate: np.ndarray | None = None
        self._candidate_rows: list[list[bool]] | None = None
        if self.config.hide_other_candidates:
            self._ensure_candidates(relevance)
        #: rows up to this many entries take the pure-Python ranking path (same order as numpy)
        self._small_degree = 48
        self._train_h: list[int] = train[:, 0].tolist()
        self._train_t: list[int] = train[:, 2].tolist()
        order = np.argsort(train[:, 1], kind="stable")
        bounds = np.searchsorted(train[order, 1], np.arange(kg.num_relations + 1))
        self._rows_of_relation: list[list[int]] = [
            order[bounds[r] : bounds[r + 1]].tolist() for r in range(kg.num_relations)
        ]
        self._count_cache: dict[str, int] = {}
        self._sentence_cache: dict[tuple[str, int], list[tuple[str, int]]] = {}
        self._warned_query = False

    def _ensure_candidates(self, relevance: np.ndarray | None = None) -> None:
        """Build the candidate matrix once (from ``relevance`` if given, else computed)."""
        if self._candidate is not None:
            return
        if relevance is None:
            relevance = relation_relevance(self.kg)
        self._candidate = relevance >= self.config.candidate_confidence
        self._candidate_rows = self._candidate.tolist()

    # ------------------------------------------------------------------ counting helpers
    def _count(self, piece: str) -> int:
        n = self._count_cache.get(piece)
        if n is None:
            n = self.count_tokens(piece)
            self._count_cache[piece] = n
        return n

    def _sentences(self, kind: str, entity: int, text: str) -> list[tuple[str, int]]:
        """Sentence pieces (with counts) of an entity's description or VLM text."""
        key = (kind, entity)
        cached = self._sentence_cache.get(key)
        if cached is None:
            sentences = [s for s in _SENTENCE_SPLIT.split(text.strip()) if s]
            template = self._parts[kind]
            pieces = [template.format(text=sentences[0])] if sentences else []
            pieces += [" " + s for s in sentences[1:]]
            cached = [(p, self._count(p)) for p in pieces]
            self._sentence_cache[key] = cached
        return cached

    def _fit_words(self, piece: str, budget: int) -> str:
        """Emergency cut of the query piece to ``budget`` tokens (longest fitting word prefix)."""
        words = piece.split(" ")
        lo, hi = 0, len(words)
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if self.count_tokens(" ".join(words[:mid])) <= budget:
                lo = mid
            else:
                hi = mid - 1
        if not self._warned_query:
            logger.warning("query piece %r exceeds budget_tokens=%d: its last words are cut",
                           piece, budget)
            self._warned_query = True
        return " ".join(words[:lo])

    # ------------------------------------------------------------------ selection
    def _ranked_neighbours(self, entity: int, q: int, exclude_edge: int | None, qseed: int,
                           only_candidate: int | None = None
                           ) -> tuple[list[int], list[int], list[int]]:
        """Candidate neighbour edges, best first: ``(neighbours, query_relations, edges)``.

        Entities with at most ``_SMALL_DEGREE`` entries take a pure-Python path, hubs a numpy
        path; both give the same order (score descending, then the per-query tie key).
        """
        lo, hi = self._indptr[entity], self._indptr[entity + 1]
        if hi == lo:
            return [], [], []
        if hi - lo <= self._small_degree:
            return self._ranked_small(entity, lo, hi, q, exclude_edge, qseed, only_candidate)
        pos = np.arange(lo, hi)
        qr = self._qr[lo:hi]
        keep = None
        if exclude_edge is not None:
            keep = self._edge[lo:hi] != exclude_edge
        shown = np.zeros(0, dtype=np.int64)
        if self.config.drop_known_answers:
            is_answer = qr == q
            if keep is not None:
                is_answer &= keep
            if is_answer.any():
                nb = self._nb[lo:hi]
                answers = nb[is_answer]
                drop = np.isin(nb, answers)
                if exclude_edge is not None and self.config.show_train_answers:
                    shown = np.asarray(sorted(self._shown_answers(
                        answers.tolist(), entity, exclude_edge, qseed)), dtype=np.int64)
                    drop &= ~(np.isin(nb, shown) & ~is_answer)
                keep = ~drop if keep is None else keep & ~drop
        target = self._shown_candidate(entity, exclude_edge, only_candidate)
        if target is not None:
            nb = self._nb[lo:hi]
            hide = self._candidate[q, qr] & (nb != target) & ~np.isin(nb, shown)
            keep = ~hide if keep is None else keep & ~hide
        if keep is not None:
            pos, qr = pos[keep], qr[keep]
            if not len(pos):
                return [], [], []
        tie = _mix_np(self._edge_u64[pos] ^ np.uint64(qseed))
        if self._relevance is None:
            order = np.argsort(tie, kind="stable")
        else:
            order = np.lexsort((tie, -self._relevance[q, qr]))
        pos = pos[order]
        if self.config.dedupe_neighbours:
            _, first = np.unique(self._nb[pos], return_index=True)
            pos = pos[np.sort(first)]
        pos = pos[: self.config.max_neighbours]
        return self._nb[pos].tolist(), self._qr[pos].tolist(), self._edge[pos].tolist()

    def _shown_answers(self, answers: Sequence[int], entity: int, exclude_edge: int, qseed: int
                       ) -> set[int]:
        """The other train answers a training context lists (``show_train_answers``).

        A seeded choice of at most ``show_train_answers`` of ``answers`` (the neighbours joined to
        ``entity`` by a query-relation edge) other than the training target; it changes with the
        target and the epoch (through ``qseed``).
        """
        target = self._training_target(entity, exclude_edge)
        others = {int(n) for n in answers} - {target}
        if not others:
            return set()
        salt = _mix(qseed ^ (target * 0x9E3779B1))
        ranked = sorted(others, key=lambda n: (_mix(n ^ salt), n))
        return set(ranked[: self.config.show_train_answers])

    def _shown_candidate(self, entity: int, exclude_edge: int | None, only_candidate: int | None
                         ) -> int | None:
        """The one answer candidate a context keeps (the others are hidden), or ``None``.

        Training contexts under ``hide_other_candidates`` keep their target; a candidate view
        (evaluation) keeps the candidate it is built for.
        """
        if only_candidate is not None:
            return only_candidate
        if exclude_edge is not None and self.config.hide_other_candidates:
            return self._training_target(entity, exclude_edge)
        return None

    def _training_target(self, entity: int, exclude_edge: int) -> int:
        """The answer of the training query of ``entity`` whose train row is ``exclude_edge``."""
        h, t = self._train_h[exclude_edge], self._train_t[exclude_edge]
        return t if h == entity else h

    def _ranked_small(self, entity: int, lo: int, hi: int, q: int, exclude_edge: int | None, qseed: int,
                      only_candidate: int | None = None) -> tuple[list[int], list[int], list[int]]:
        qrs, nbs, edges = self._qr_list[lo:hi], self._nb_list[lo:hi], self._edge_list[lo:hi]
        entries = list(zip(nbs, qrs, edges, strict=True))
        if exclude_edge is not None:
            entries = [x for x in entries if x[2] != exclude_edge]
        shown: set[int] = set()
        if self.config.drop_known_answers:
            answers = {n for n, r, _ in entries if r == q}
            if answers:
                if exclude_edge is not None and self.config.show_train_answers:
                    shown = self._shown_answers(sorted(answers), entity, exclude_edge, qseed)
                entries = [x for x in entries
                           if x[0] not in answers or (x[0] in shown and x[1] != q)]
        target = self._shown_candidate(entity, exclude_edge, only_candidate)
        if target is not None:
            row = self._candidate_rows[q]
            entries = [x for x in entries if x[0] == target or x[0] in shown or not row[x[1]]]
        if not entries:
            return [], [], []
        if self._relevance_rows is None:
            entries.sort(key=lambda x: _mix(x[2] ^ qseed))
        else:
            row = self._relevance_rows[q]
            entries.sort(key=lambda x: (-row[x[1]], _mix(x[2] ^ qseed)))
        if self.config.dedupe_neighbours:
            seen: set[int] = set()
            entries = [x for x in entries if not (x[0] in seen or seen.add(x[0]))]
        entries = entries[: self.config.max_neighbours]
        return [x[0] for x in entries], [x[1] for x in entries], [x[2] for x in entries]

    def _examples(self, entity: int, q: int, exclude_edge: int | None, qseed: int
                  ) -> list[tuple[int, str, int]]:
        """Up to ``num_examples`` train rows of relation ``q mod R`` not involving ``entity``."""
        k = self.config.num_examples
        if not self.config.include_examples or k == 0:
            return []
        num_r = self.kg.num_relations
        rows = self._rows_of_relation[q % num_r]
        if not rows:
            return []
        chosen: list[int] = []
        h_list, t_list = self._train_h, self._train_t
        state = _mix(qseed ^ 0x5DEECE66D)
        for _ in range(4 * k + 4):
            state = _mix(state)
            row = rows[state % len(rows)]
            if row == exclude_edge or row in chosen or h_list[row] == entity or t_list[row] == entity:
                continue
            chosen.append(row)
            if len(chosen) == k:
                break
        rel = self._relation_texts[q]
        names = self._names
        template = self._parts["example"]
        out = []
        for row in chosen:
            a, b = (h_list[row], t_list[row]) if q < num_r else (t_list[row], h_list[row])
            out.append((row, template.format(head=names[a], relation=rel, tail=names[b]), 0))
        return out

    def _masks_query_entity(self, exclude_edge: int | None, epoch: int, entity: int, q: int
                            ) -> bool:
        """Whether this source leaves the query entity's name out (``mask_query_entity``)."""
        p = self.config.mask_query_entity
        if p >= 1.0:
            return True
        if p <= 0.0 or exclude_edge is None:  # evaluation masks only at p = 1
            return False
        # a draw of its own (salted seed), independent of the tie-breaking key of the query
        u = int(query_seed(self.config.seed ^ _MASK_SALT, epoch, entity, q)) >> 11
        return u * 2.0 ** -53 < p

    # ------------------------------------------------------------------ public API
    def select(self, entity: int, query_relation: int, *, exclude_edge: int | None = None,
               epoch: int = 0, only_candidate: int | None = None) -> BuiltContext:
        """Build the context of ``(entity, query_relation, ?)`` and report what it contains.

        :param entity: internal entity id of the query's known side
        :param query_relation: ``q in [0, 2R)`` (``q >= R``: inverse of relation ``q - R``)
        :param exclude_edge: train row index of the query triple while training: that triple
            and its own inverse edge are left out; ``None`` at evaluation
        :param epoch: training epoch (changes tie-breaking and example sampling)
        :param only_candidate: evaluation only: build the candidate view of this entity, i.e.
            hide every other answer candidate (see :meth:`answer_candidates`), as a training
            context under ``hide_other_candidates`` hides all but its target
        """
        cfg = self.config
        entity, q = int(entity), int(query_relation)
        if not 0 <= q < len(self._relation_texts):
            raise ValueError(f"query_relation {q} outside [0, {len(self._relation_texts)})")
        if only_candidate is not None:
            if exclude_edge is not None:
                raise ValueError("only_candidate builds evaluation contexts: pass no exclude_edge")
            only_candidate = int(only_candidate)
            self._ensure_candidates()
        if exclude_edge is not None:
            if not 0 <= int(exclude_edge) < len(self._canonical_row):
                raise ValueError(f"exclude_edge {exclude_edge} is not a train row index "
                                 f"(0..{len(self._canonical_row) - 1})")
            exclude_edge = int(self._canonical_row[int(exclude_edge)])
        qseed = query_seed(cfg.seed, epoch, entity, q)
        budget = cfg.budget_tokens
        names = self._names
        rel_texts = self._relation_texts
        count = self._count

        if self._masks_query_entity(exclude_edge, epoch, entity, q):
            # the layout's query part with an empty name; whitespace left around it is collapsed
            query_piece = " ".join(
                self._parts["query"].format(head="", relation=rel_texts[q]).split())
        else:
            query_piece = self._parts["query"].format(head=names[entity], relation=rel_texts[q])
        used = count(query_piece)
        if used > budget:
            query_piece = self._fit_words(query_piece, budget)
            used = self.count_tokens(query_piece)
        # fill order stack of (slot, index); slots: n=neighbour, c=caption, d=desc, v=vlm, e=example
        filled: list[tuple[str, int]] = []

        nb_ids, nb_qr, nb_edges = self._ranked_neighbours(entity, q, exclude_edge, qseed,
                                                          only_candidate)
        nb_template = self._parts["neighbour"]
        nb_pieces = [nb_template.format(relation=rel_texts[r], neighbour=names[n])
                     for r, n in zip(nb_qr, nb_ids, strict=False)]
        nb_in = [False] * len(nb_pieces)
        cap_pieces: list[str] = [""] * len(nb_pieces)
        if cfg.include_captions and self.captions is not None and self.captions.link_text:
            cap_template = self._parts["caption"]
            for i, n in enumerate(nb_ids):
                text = self.captions.link(entity, n)
                if text:
                    cap_pieces[i] = cap_template.format(caption=text)
        cap_in = [False] * len(nb_pieces)

        def add_neighbour(i: int) -> None:
            nonlocal used
            c = count(nb_pieces[i])
            if used + c <= budget:
                used += c
                nb_in[i] = True
                filled.append(("n", i))

        def add_caption(i: int) -> None:
            nonlocal used
            if nb_in[i] and cap_pieces[i]:
                c = count(cap_pieces[i])
                if used + c <= budget:
                    used += c
                    cap_in[i] = True
                    filled.append(("c", i))

        prio = min(cfg.priority_neighbours, len(nb_pieces))
        for i in range(prio):
            add_neighbour(i)

        text_pieces: dict[str, list[tuple[str, int]]] = {"d": [], "v": []}
        if cfg.include_description and self.kg.entity_descriptions is not None:
            text_pieces["d"] = self._sentences("description", entity, self.kg.entity_descriptions[entity])
        if cfg.include_vlm_text:
            vlm = self.captions.entity(entity) if self.captions is not None else ""
            if not vlm and self.kg.entity_vlm_text is not None:
                vlm = self.kg.entity_vlm_text[entity]
            if vlm:
                text_pieces["v"] = self._sentences("vlm_text", entity, vlm)
        text_in = {"d": 0, "v": 0}
        for slot in ("d", "v"):
            for j, (_, c) in enumerate(text_pieces[slot]):
                if used + c > budget:
                    break
                used += c
                text_in[slot] = j + 1
                filled.append((slot, j))

        for i in range(prio):
            add_caption(i)
        for i in range(prio, len(nb_pieces)):
            add_neighbour(i)
            add_caption(i)

        examples = self._examples(entity, q, exclude_edge, qseed)
        ex_in = [False] * len(examples)
        for j, (_, piece, _) in enumerate(examples):
            c = count(piece)
            if used + c <= budget:
                used += c
                ex_in[j] = True
                filled.append(("e", j))

        def render() -> str:
            neighbours = "".join(
                nb_pieces[i] + (cap_pieces[i] if cap_in[i] else "")
                for i in range(len(nb_pieces)) if nb_in[i]
            )
            description = "".join(p for p, _ in text_pieces["d"][: text_in["d"]]) + "".join(
                p for p, _ in text_pieces["v"][: text_in["v"]]
            )
            ex = "".join(examples[j][1] for j in range(len(examples)) if ex_in[j])
            return self.layout.template.format(
                query=query_piece, neighbours=neighbours, description=description, examples=ex
            )

        text = render()
        n_tokens = self.count_tokens(text)
        while n_tokens > budget and filled:
            slot, i = filled.pop()
            if slot == "n":
                nb_in[i] = False
                cap_in[i] = False
            elif slot == "c":
                cap_in[i] = False
            elif slot in ("d", "v"):
                text_in[slot] = i
            else:
                ex_in[i] = False
            text = render()
            n_tokens = self.count_tokens(text)
        if n_tokens > budget:  # only the (already cut) query is left
            text = self._fit_words(text, budget)
            n_tokens = self.count_tokens(text)
        included = [i for i in range(len(nb_pieces)) if nb_in[i]]
        return BuiltContext(
            text=text,
            num_tokens=n_tokens,
            neighbours=[nb_ids[i] for i in included],
            edges=[nb_edges[i] for i in included],
            query_relations=[nb_qr[i] for i in included],
            examples=[examples[j][0] for j in range(len(examples)) if ex_in[j]],
        )

    def build(self, entity: int, query_relation: int, *, exclude_edge: int | None = None,
              epoch: int = 0) -> str:
        """The source string of ``(entity, query_relation, ?)`` (see :meth:`select`)."""
        return self.select(entity, query_relation, exclude_edge=exclude_edge, epoch=epoch).text

    def select_many(self, queries: np.ndarray | Sequence[Sequence[int]], *,
                    exclude_edges: np.ndarray | Sequence[int | None] | None = None,
                    epoch: int = 0) -> list[BuiltContext]:
        """:meth:`select` for many queries.

        :param queries: int ``(n, 2)`` or ``(n, 3)`` rows ``(entity, query_relation[, answer])``
        :param exclude_edges: ``(n,)`` train row index per query (negative or ``None`` = none)
        :param epoch: training epoch
        :returns: ``n`` :class:`BuiltContext`
        """
        rows = np.asarray(queries, dtype=np.int64).reshape(len(queries), -1)
        entities = rows[:, 0].tolist()
        relations = rows[:, 1].tolist()
        if exclude_edges is None:
            excludes: list[int | None] = [None] * len(entities)
        else:
            excludes = [None if e is None or int(e) < 0 else int(e) for e in exclude_edges]
            if len(excludes) != len(entities):
                raise ValueError(f"exclude_edges has {len(excludes)} entries for {len(entities)} queries")
        return [
            self.select(e, q, exclude_edge=x, epoch=epoch)
            for e, q, x in zip(entities, relations, excludes, strict=False)
        ]

    def answer_candidates(self, entity: int, query_relation: int) -> list[int]:
        """The answer candidates of an evaluation query, most relevant first.

        A candidate is a neighbour joined to ``entity`` by an edge whose relation predicts the
        query relation (relevance >= ``candidate_confidence``), among the ``max_neighbours``
        ranked neighbour edges of the evaluation context (known train answers already dropped
        when ``drop_known_answers``). Each entity is listed once.
        """
        entity, q = int(entity), int(query_relation)
        self._ensure_candidates()
        qseed = query_seed(self.config.seed, 0, entity, q)
        nb_ids, nb_qr, _ = self._ranked_neighbours(entity, q, None, qseed)
        row = self._candidate_rows[q]
        out: list[int] = []
        for n, qr in zip(nb_ids, nb_qr, strict=True):
            if row[qr] and n not in out:
                out.append(n)
        return out

    def build_candidate_views(self, queries: np.ndarray | Sequence[Sequence[int]], max_views: int
                              ) -> tuple[list[str], np.ndarray, np.ndarray]:
        """Candidate views of evaluation queries: ``(sources, owner, candidates)``.

        Each of a query's answer candidates (:meth:`answer_candidates`, the first ``max_views``)
        gets its own view: the evaluation context with every other candidate hidden, as a
        training context under ``hide_other_candidates`` hides all but its target. A query with
        one candidate gets its full context (nothing to hide), one with none gets no view. A
        model trained on one-candidate contexts copies the first candidate a context lists and
        rarely the others; scoring each candidate on its own view (see
        :func:`kgt5mm.evaluation.predict_candidates`) judges every candidate alike.

        :param queries: int ``(n, 2)`` or ``(n, 3)`` rows ``(entity, query_relation[, answer])``
        :param max_views: most views per query (``>= 1``)
        :returns: the view source strings, ``owner[i]`` (the query row of ``sources[i]``,
            non-decreasing) and ``candidates[i]`` (the candidate that ``sources[i]`` lists)
        """
        if max_views < 1:
            raise ValueError(f"max_views must be >= 1, got {max_views}")
        rows = np.asarray(queries, dtype=np.int64).reshape(len(queries), -1)
        sources: list[str] = []
        owner: list[int] = []
        chosen: list[int] = []
        for i, (entity, q) in enumerate(rows[:, :2].tolist()):
            candidates = self.answer_candidates(entity, q)
            for c in candidates[:max_views]:
                only = c if len(candidates) > 1 else None
                sources.append(self.select(entity, q, only_candidate=only).text)
                owner.append(i)
                chosen.append(c)
        return sources, np.asarray(owner, dtype=np.int64), np.asarray(chosen, dtype=np.int64)

    def build_many(self, queries: np.ndarray | Sequence[Sequence[int]], *,
                   exclude_edges: np.ndarray | Sequence[int | None] | None = None,
                   epoch: int = 0) -> list[str]:
        """Source strings of many queries (the ``text`` of :meth:`select_many`)."""
        return [c.text for c in self.select_many(queries, exclude_edges=exclude_edges, epoch=epoch)]

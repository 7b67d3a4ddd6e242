"""The :class:`KnowledgeGraph`: one typed object for ids, splits, text, images and indexes.

Build one from a dataset on disk with :func:`kgt5mm.data.load_graph`, or from Python triples::

    kg = KnowledgeGraph.from_triples(
        train=[("cat", "is a", "animal"), ("dog", "is a", "animal")],
        valid=[("cat", "likes", "dog")], test=[("dog", "likes", "cat")], name="toy")
    kg.queries("test")        # (2n, 3) int64: tail queries, then head queries
    kg.filter_index.answers(kg.entity_index("cat"), 0)
    kg.neighbours.of(kg.entity_index("animal"))

Conventions (shared by the whole project): entities ``0..E-1``, relations ``0..R-1``,
triples int64 ``(n, 3)`` ``(head, relation, tail)``; query relation ``q < R`` reads relation
``q`` forwards, ``q >= R`` reads relation ``q - R`` backwards.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from kgt5mm.data.indexes import FilterIndex, NeighbourIndex, both_directions
from kgt5mm.data.names import NameIndex, disambiguate_names, shared_name_count
from kgt5mm.errors import KGT5MMError
from kgt5mm.typing import INVERSE_PREFIX, SPLITS, Split

__all__ = ["KnowledgeGraph", "inverse_texts"]

logger = logging.getLogger(__name__)


def inverse_texts(texts: Sequence[str]) -> list[str]:
    """Default verbalizations of inverse relations: ``"reverse of <text>"``."""
    return [f"{INVERSE_PREFIX}{t}" for t in texts]


class KnowledgeGraph:
    """A knowledge graph with its splits, entity/relation text, images and indexes.

    All arguments are keyword-only; lists are indexed by internal id.

    :param name: dataset name (e.g. ``"wn9_img"``)
    :param entity_ids: external entity ids, unique, length ``E``
    :param entity_names: unique surface names, length ``E`` (use
        :func:`kgt5mm.data.names.disambiguate_names` first)
    :param relation_ids: external relation ids, unique, length ``R``
    :param relation_texts: verbalization of each query relation, length ``2R`` (``R`` is also
        accepted: the inverse ones then become ``"reverse of <text>"``)
    :param splits: ``"train"``, ``"valid"``, ``"test"`` -> int64 ``(n, 3)`` triples
    :param entity_descriptions: definition/description per entity (``""`` where missing)
    :param entity_vlm_text: VLM-written text per entity (``""`` where missing)
    :param entity_images: image file paths per entity (``[]`` where none)
    :param entity_types: entity type per entity (``""`` where missing)
    :param relation_templates: per query relation a sentence with ``[A]`` (query entity) and
        ``[B]`` (answer), length ``2R``, or ``None``
    :param raw_entity_names: names before disambiguation (default ``entity_names``)
    :param skipped: what the loader deliberately skipped, ``{"what": count}``
    :param source: where the graph was loaded from (path or ``"embedded"``)
    :raises KGT5MMError: on inconsistent lengths, out-of-range ids, duplicate ids or names
    """

    def __init__(
        self,
        *,
        name: str,
        entity_ids: Sequence[str],
        entity_names: Sequence[str],
        relation_ids: Sequence[str],
        relation_texts: Sequence[str],
        splits: Mapping[str, np.ndarray],
        entity_descriptions: Sequence[str] | None = None,
        entity_vlm_text: Sequence[str] | None = None,
        entity_images: Sequence[Sequence[str]] | None = None,
        entity_types: Sequence[str] | None = None,
        relation_templates: Sequence[str] | None = None,
        raw_entity_names: Sequence[str] | None = None,
        skipped: Mapping[str, int] | None = None,
        source: str | None = None,
    ):
        self.name = str(name)
        self.entity_ids: list[str] = list(entity_ids)
        self.entity_names: list[str] = list(entity_names)
        self.relation_ids: list[str] = list(relation_ids)
        E, R = len(self.entity_ids), len(self.relation_ids)
        texts = list(relation_texts)
        if len(texts) == R:
            texts = texts + inverse_texts(texts)
        self.relation_texts: list[str] = texts
        self.entity_descriptions = (
            None if entity_descriptions is None else list(entity_descriptions)
        )
        self.entity_vlm_text = None if entity_vlm_text is None else list(entity_vlm_text)
        self.entity_images = (
            None if entity_images is None else [list(paths) for paths in entity_images]
        )
        self.entity_types = None if entity_types is None else list(entity_types)
        self.relation_templates = None if relation_templates is None else list(relation_templates)
        self.raw_entity_names = (
            list(self.entity_names) if raw_entity_names is None else list(raw_entity_names)
        )
        self.skipped: dict[str, int] = dict(skipped or {})
        self.source = source
        self.splits: dict[str, np.ndarray] = {}
        for split in SPLITS:
            array = np.asarray(splits.get(split, np.zeros((0, 3))), dtype=np.int64).reshape(-1, 3)
            array.flags.writeable = False
            self.splits[split] = array
        unknown = set(splits) - set(SPLITS)
        if unknown:
            raise KGT5MMError(f"unknown split names {sorted(unknown)}; expected {list(SPLITS)}")
        self._validate(E, R)
        self._names = NameIndex(self.entity_names)

    # ------------------------------------------------------------------ validation
    def _validate(self, E: int, R: int) -> None:
        def check_len(label: str, values: Sequence[Any] | None, expected: int) -> None:
            if values is not None and len(values) != expected:
                raise KGT5MMError(
                    f"{self.name}: {label} has {len(values)} entries, expected {expected}"
                )

        check_len("entity_names", self.entity_names, E)
        check_len("raw_entity_names", self.raw_entity_names, E)
        check_len("relation_texts", self.relation_texts, 2 * R)
        check_len("entity_descriptions", self.entity_descriptions, E)
        check_len("entity_vlm_text", self.entity_vlm_text, E)
        check_len("entity_images", self.entity_images, E)
        check_len("entity_types", self.entity_types, E)
        check_len("relation_templates", self.relation_templates, 2 * R)
        for label, ids in (("entity", self.entity_ids), ("relation", self.relation_ids)):
            if len(set(ids)) != len(ids):
                seen: set[str] = set()
                duplicate = next(i for i in ids if i in seen or seen.add(i))  # type: ignore[func-returns-value]
                raise KGT5MMError(f"{self.name}: duplicate {label} id {duplicate!r}")
        empty = [i for i, n in enumerate(self.entity_names) if not n.strip()]
        if empty:
            raise KGT5MMError(
                f"{self.name}: entity {self.entity_ids[empty[0]]!r} has an empty name"
            )
        for split, triples in self.splits.items():
            if len(triples) == 0:
                continue
            bad = (
                (triples[:, 0] < 0)
                | (triples[:, 0] >= E)
                | (triples[:, 2] < 0)
                | (triples[:, 2] >= E)
                | (triples[:, 1] < 0)
                | (triples[:, 1] >= R)
            )
            if bad.any():
                row = int(np.flatnonzero(bad)[0])
                raise KGT5MMError(
                    f"{self.name}: {split} triple {row} {triples[row].tolist()} is out of range "
                    f"(E={E}, R={R})"
                )

    # ------------------------------------------------------------------ sizes and lookups
    @property
    def num_entities(self) -> int:
        """``E``, the number of entities."""
        return len(self.entity_ids)

    @property
    def num_relations(self) -> int:
        """``R``, the number of relations."""
        return len(self.relation_ids)

    @property
    def num_query_relations(self) -> int:
        """``2R``: forward and inverse query relations."""
        return 2 * len(self.relation_ids)

    def entity_index(self, name: str) -> int:
        """Internal id of the entity with this unique surface name.

        :raises KeyError: with a clear message when no entity has this name
        """
        return self._names[name]

    def has_entity_name(self, name: str) -> bool:
        """Whether some entity has exactly this surface name."""
        return name in self._names

    @cached_property
    def _entity_id_index(self) -> dict[str, int]:
        return {eid: i for i, eid in enumerate(self.entity_ids)}

    @cached_property
    def _relation_id_index(self) -> dict[str, int]:
        return {rid: i for i, rid in enumerate(self.relation_ids)}

    def entity_index_by_id(self, entity_id: str) -> int:
        """Internal id of the entity with this external id (:raises KeyError: if unknown)."""
        try:
            return self._entity_id_index[entity_id]
        except KeyError:
            raise KeyError(f"{self.name}: no entity with id {entity_id!r}") from None

    def relation_index(self, relation: str) -> int:
        """Internal id of a relation given its external id or its forward text.

        :raises KeyError: if neither matches
        """
        if relation in self._relation_id_index:
            return self._relation_id_index[relation]
        for i, text in enumerate(self.relation_texts[: self.num_relations]):
            if text == relation:
                return i
        raise KeyError(f"{self.name}: no relation with id or text {relation!r}")

    def resolve_entity(self, value: int | str) -> int:
        """Internal id of an entity given the way a user types it.

        Accepted, in this order: an ``int`` internal id; a unique surface name; an external
        id (e.g. ``n02121808``); a string of digits as internal id. A string that is the name
        of one entity and the external id of another is ambiguous and refused.

        :raises KGT5MMError: naming the value when nothing (or two entities) match
        """
        if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
            if not 0 <= int(value) < self.num_entities:
                raise KGT5MMError(f"{self.name}: entity {value} outside 0..{self.num_entities - 1}")
            return int(value)
        text = str(value)
        by_name = self._names.get(text)
        by_id = self._entity_id_index.get(text)
        if by_name is not None and by_id is not None and by_name != by_id:
            raise KGT5MMError(
                f"{self.name}: {text!r} is the name of entity {by_name} and the id of entity "
                f"{by_id}; pass the internal id instead"
            )
        for found in (by_name, by_id):
            if found is not None:
                return int(found)
        if text.isascii() and text.isdigit():
            return self.resolve_entity(int(text))
        raise KGT5MMError(f"{self.name}: unknown entity {text!r} (not a name, an id or an index)")

    def resolve_query_relation(self, value: int | str, *, inverse: bool = False) -> int:
        """Query relation ``q`` in ``[0, 2R)`` given the way a user types it.

        Accepted: an ``int`` (or digit string) ``q``; an external relation id (e.g.
        ``_hypernym``); a verbalization from :attr:`relation_texts` (an inverse wording gives
        its ``q >= R``). ``inverse=True`` turns a forward relation into its inverse (``q + R``),
        i.e. a head query.

        :raises KGT5MMError: naming the value when nothing matches, or when ``inverse`` is
            asked of a relation that is already inverse
        """
        R = self.num_relations
        if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
            q = int(value)
        elif str(value) in self._relation_id_index:
            q = self._relation_id_index[str(value)]
        elif str(value) in self.relation_texts:
            q = self.relation_texts.index(str(value))
        elif str(value).isascii() and str(value).isdigit():
            q = int(str(value))
        else:
            raise KGT5MMError(
                f"{self.name}: unknown relation {str(value)!r}; relations: {list(self.relation_ids)[:20]}"
            )
        if not 0 <= q < 2 * R:
            raise KGT5MMError(f"{self.name}: query relation {q} outside 0..{2 * R - 1}")
        if inverse:
            if q >= R:
                raise KGT5MMError(f"{self.name}: relation {value!r} is already inverse (q={q})")
            q += R
        return q

    # ------------------------------------------------------------------ queries and indexes
    def queries(self, split: Split) -> np.ndarray:
        """All queries of a split: int64 ``(2n, 3)`` ``(entity, query_relation, answer)``.

        The first ``n`` rows are tail queries ``(h, r, t)``, the next ``n`` head queries
        ``(t, r + R, h)``, both in split order.
        """
        if split not in self.splits:
            raise KGT5MMError(f"unknown split {split!r}; expected one of {list(SPLITS)}")
        return both_directions(self.splits[split], self.num_relations)

    @cached_property
    def filter_index(self) -> FilterIndex:
        """All known answers over train + valid + test (built on first use)."""
        return FilterIndex(
            [self.splits[s] for s in SPLITS],
            num_entities=self.num_entities,
            num_relations=self.num_relations,
        )

    @cached_property
    def neighbours(self) -> NeighbourIndex:
        """CSR adjacency of the train triples in both directions (built on first use)."""
        return NeighbourIndex(
            self.splits["train"], num_entities=self.num_entities, num_relations=self.num_relations
        )

    def build_indexes(self) -> KnowledgeGraph:
        """Build the filter and neighbour indexes now (they are lazy otherwise); returns self."""
        _ = self.filter_index, self.neighbours
        return self

    @property
    def shared_name_count(self) -> int:
        """Number of raw names shared by two or more entities (before disambiguation)."""
        return shared_name_count(self.raw_entity_names)

    def __repr__(self) -> str:
        sizes = ", ".join(f"{s}={len(self.splits[s])}" for s in SPLITS)
        return (
            f"KnowledgeGraph(name={self.name!r}, entities={self.num_entities}, "
            f"relations={self.num_relations}, {sizes})"
        )

    # ------------------------------------------------------------------ constructors
    @classmethod
    def from_triples(
        cls,
        *,
        train: Iterable[tuple[str, str, str]],
        valid: Iterable[tuple[str, str, str]] = (),
        test: Iterable[tuple[str, str, str]] = (),
        name: str = "toy",
        descriptions: Mapping[str, str] | None = None,
        vlm_text: Mapping[str, str] | None = None,
        images: Mapping[str, Sequence[str]] | None = None,
        relation_texts: Mapping[str, str] | None = None,
        inverse_relation_texts: Mapping[str, str] | None = None,
    ) -> KnowledgeGraph:
        """Build a small graph from ``(head, relation, tail)`` string triples.

        Entity and relation ids are the strings themselves, numbered in order of first
        appearance (train, then valid, then test); entity names are the ids.

        :param descriptions: entity id -> description (others get ``""``)
        :param vlm_text: entity id -> VLM-written text
        :param images: entity id -> image paths
        :param relation_texts: relation id -> forward text (default: the id)
        :param inverse_relation_texts: relation id -> inverse text (default "reverse of ...")
        """
        entity_ids: dict[str, int] = {}
        relation_ids: dict[str, int] = {}
        arrays: dict[str, np.ndarray] = {}
        for split, triples in (("train", train), ("valid", valid), ("test", test)):
            rows = []
            for triple in triples:
                if len(triple) != 3:
                    raise KGT5MMError(f"{split} triple {triple!r} does not have 3 fields")
                h, r, t = (str(x) for x in triple)
                for label, value in (("head", h), ("relation", r), ("tail", t)):
                    if not value.strip():
                        raise KGT5MMError(f"{split} triple {triple!r} has an empty {label}")
                rows.append(
                    (
                        entity_ids.setdefault(h, len(entity_ids)),
                        relation_ids.setdefault(r, len(relation_ids)),
                        entity_ids.setdefault(t, len(entity_ids)),
                    )
                )
            arrays[split] = np.asarray(rows, dtype=np.int64).reshape(-1, 3)
        entities = list(entity_ids)
        relations = list(relation_ids)
        forward = [(relation_texts or {}).get(r, r) for r in relations]
        inverse_default = inverse_texts(forward)
        inverse = [
            (inverse_relation_texts or {}).get(r, inverse_default[i])
            for i, r in enumerate(relations)
        ]
        return cls(
            name=name,
            entity_ids=entities,
            entity_names=entities,
            relation_ids=relations,
            relation_texts=forward + inverse,
            splits=arrays,
            entity_descriptions=None
            if descriptions is None
            else [descriptions.get(e, "") for e in entities],
            entity_vlm_text=None if vlm_text is None else [vlm_text.get(e, "") for e in entities],
            entity_images=None if images is None else [list(images.get(e, [])) for e in entities],
            source="python",
        )

    def subgraph(self, entities: Iterable[int], *, name: str | None = None) -> KnowledgeGraph:
        """The graph restricted to ``entities``: triples with both ends inside are kept.

        Entities keep their relative order (new id = rank among the kept old ids) and their
        names; all relations are kept so relation ids stay the same. Split membership of every
        kept triple is unchanged.
        """
        keep = np.unique(np.fromiter((int(e) for e in entities), dtype=np.int64))
        if len(keep) and (keep[0] < 0 or keep[-1] >= self.num_entities):
            raise KGT5MMError(f"subgraph entities out of range 0..{self.num_entities - 1}")
        new_id = np.full(self.num_entities, -1, dtype=np.int64)
        new_id[keep] = np.arange(len(keep))
        splits = {}
        for split, triples in self.splits.items():
            inside = (new_id[triples[:, 0]] >= 0) & (new_id[triples[:, 2]] >= 0)
            kept = triples[inside].copy()
            kept[:, 0] = new_id[kept[:, 0]]
            kept[:, 2] = new_id[kept[:, 2]]
            splits[split] = kept

        def pick(values: Sequence[Any] | None) -> list[Any] | None:
            return None if values is None else [values[i] for i in keep.tolist()]

        return KnowledgeGraph(
            name=name or f"{self.name}_subgraph",
            entity_ids=pick(self.entity_ids),  # type: ignore[arg-type]
            entity_names=pick(self.entity_names),  # type: ignore[arg-type]
            relation_ids=self.relation_ids,
            relation_texts=self.relation_texts,
            splits=splits,
            entity_descriptions=pick(self.entity_descriptions),
            entity_vlm_text=pick(self.entity_vlm_text),
            entity_images=pick(self.entity_images),
            entity_types=pick(self.entity_types),
            relation_templates=self.relation_templates,
            raw_entity_names=pick(self.raw_entity_names),
            source=self.source,
        )

    @staticmethod
    def unique_names(
        names: Sequence[str], *, ids: Sequence[str], hints: Sequence[Sequence[str]] | None = None
    ) -> list[str]:
        """Shortcut to :func:`kgt5mm.data.names.disambiguate_names`."""
        return disambiguate_names(names, ids=ids, hints=hints)

    # ------------------------------------------------------------------ Hugging Face datasets
    def to_hf_dataset(self) -> Any:
        """This graph as a ``datasets.DatasetDict`` (see :mod:`kgt5mm.data.hf`)."""
        from kgt5mm.data.hf import to_hf_dataset

        return to_hf_dataset(self)

    @classmethod
    def from_hf_dataset(cls, source: Any, *, name: str | None = None) -> KnowledgeGraph:
        """Rebuild a graph from :meth:`to_hf_dataset` output, an exported folder or a Hub id."""
        from kgt5mm.data.hf import from_hf_dataset

        return from_hf_dataset(source, name=name)

    def save_hf(self, out_dir: str | Path) -> Path:
        """Write this graph as a Parquet dataset folder (Hub-ready); returns the folder."""
        from kgt5mm.data.hf import export_hf

        return export_hf(self, out_dir)

"""Reader of the generic format for users' own knowledge graphs.

A dataset folder holds (UTF-8, tab-separated, one record per line; an optional header line is
recognised by its exact column names)::

    train.tsv        head<TAB>relation<TAB>tail        required
    valid.tsv        same                              optional (missing = empty split)
    test.tsv         same                              optional (missing = empty split)
    entities.tsv     id<TAB>name[<TAB>description[<TAB>vlm_text]]   optional
    relations.tsv    id<TAB>text[<TAB>inverse_text]                 optional
    images/          image files named <entity_id>.<ext> or <entity_id>_<anything>.<ext>
    images.tsv       entity_id<TAB>path   (path relative to the folder, or absolute)

Triples may name entities by id or by name: with ``entities.tsv``, each head/tail field must
be an id listed there or a name that exactly one listed entity has (a name shared by several
entities is an error: use the id). Without ``entities.tsv``, the strings in the triples are the
entity ids and names. Relations likewise match ``relations.tsv`` ids, then texts. Inverse
relation texts default to ``"reverse of <text>"``. Shared names are disambiguated with the
first words of the description, then the id.

Every malformed line raises :class:`~kgt5mm.errors.DataFormatError` with file, line and value;
image files that match no entity are skipped and counted in ``kg.skipped``.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from pathlib import Path

import numpy as np

from kgt5mm.data.formats.common import check_not_empty, lookup
from kgt5mm.data.graph import KnowledgeGraph, inverse_texts
from kgt5mm.data.names import definition_hints, disambiguate_names
from kgt5mm.data.parsing import TableRows, read_table
from kgt5mm.errors import DataFormatError
from kgt5mm.typing import (
    GENERIC_ENTITY_TEXT,
    GENERIC_IMAGE_LIST,
    GENERIC_IMAGES_DIR,
    GENERIC_RELATION_TEXT,
    GENERIC_SPLIT_FILES,
    IMAGE_EXTENSIONS,
)

__all__ = ["load_generic", "TRIPLE_HEADER", "ENTITY_HEADER", "RELATION_HEADER"]

logger = logging.getLogger(__name__)

TRIPLE_HEADER = ("head", "relation", "tail")
ENTITY_HEADER = ("id", "name", "description", "vlm_text")
RELATION_HEADER = ("id", "text", "inverse_text")
IMAGE_LIST_HEADER = ("entity_id", "path")


def _drop_header(table: TableRows, header: tuple[str, ...]) -> TableRows:
    if table.rows and tuple(table.rows[0]) == header[: len(table.rows[0])]:
        table.rows.pop(0)
        table.lines.pop(0)
    return table


def _build_lookup(ids: list[str], names: list[str]) -> tuple[dict[str, int], dict[str, list[int]]]:
    by_id = {value: i for i, value in enumerate(ids)}
    by_name: dict[str, list[int]] = defaultdict(list)
    for i, value in enumerate(names):
        by_name[value].append(i)
    return by_id, by_name


def _resolve(
    values: list[str],
    by_id: dict[str, int],
    by_name: dict[str, list[int]],
    *,
    path: Path,
    lines: list[int],
    what: str,
) -> np.ndarray:
    out = np.empty(len(values), dtype=np.int64)
    for k, value in enumerate(values):
        index = by_id.get(value)
        if index is None:
            matches = by_name.get(value)
            if not matches:
                raise DataFormatError(
                    path, lines[k], f"unknown {what} (not an id or a name)", value
                )
            if len(matches) > 1:
                raise DataFormatError(
                    path,
                    lines[k],
                    f"{what} name is shared by {len(matches)} entries; use the id instead",
                    value,
                )
            index = matches[0]
        out[k] = index
    return out


def load_generic(folder: str | Path, *, name: str, source: str | None = None) -> KnowledgeGraph:
    """Load a generic-format dataset folder (see module docstring)."""
    folder = Path(folder)
    skipped: dict[str, int] = {}
    blank = 0

    tables: dict[str, TableRows | None] = {}
    for split, file_name in GENERIC_SPLIT_FILES.items():
        path = folder / file_name
        if not path.is_file():
            if split == "train":
                raise DataFormatError(path, None, "missing train split file")
            logger.warning("%s not found: the %s split is empty", path, split)
            tables[split] = None
            continue
        table = _drop_header(read_table(path, min_columns=3), TRIPLE_HEADER)
        blank += table.skipped_blank
        check_not_empty(path, len(table), f"{split} split")
        for row, line in zip(table.rows, table.lines, strict=True):
            for field, label in zip(row, TRIPLE_HEADER, strict=True):
                if not field:
                    raise DataFormatError(path, line, f"empty {label}", "\t".join(row))
        tables[split] = table

    # --- entities
    entity_path = folder / GENERIC_ENTITY_TEXT
    descriptions: list[str] | None = None
    vlm: list[str] | None = None
    if entity_path.is_file():
        table = _drop_header(read_table(entity_path, min_columns=2, max_columns=4), ENTITY_HEADER)
        blank += table.skipped_blank
        check_not_empty(entity_path, len(table), "entity file")
        entity_ids: list[str] = []
        raw_names: list[str] = []
        first: dict[str, int] = {}
        has_desc = any(len(r) > 2 for r in table.rows)
        has_vlm = any(len(r) > 3 for r in table.rows)
        descriptions = [] if has_desc else None
        vlm = [] if has_vlm else None
        for row, line in zip(table.rows, table.lines, strict=True):
            eid, ename = row[0], row[1]
            if not eid:
                raise DataFormatError(entity_path, line, "empty entity id", "\t".join(row))
            if not ename:
                raise DataFormatError(entity_path, line, "empty entity name", eid)
            if eid in first:
                raise DataFormatError(
                    entity_path, line, f"duplicate entity id (first on line {first[eid]})", eid
                )
            first[eid] = line
            entity_ids.append(eid)
            raw_names.append(ename)
            if descriptions is not None:
                descriptions.append(row[2] if len(row) > 2 else "")
            if vlm is not None:
                vlm.append(row[3] if len(row) > 3 else "")
        by_id, by_name = _build_lookup(entity_ids, raw_names)
        splits = {}
        for split, table_s in tables.items():
            if table_s is None:
                splits[split] = np.zeros((0, 3), np.int64)
                continue
            head = _resolve(
                table_s.column(0),
                by_id,
                by_name,
                path=table_s.path,
                lines=table_s.lines,
                what="head entity",
            )
            tail = _resolve(
                table_s.column(2),
                by_id,
                by_name,
                path=table_s.path,
                lines=table_s.lines,
                what="tail entity",
            )
            splits[split] = np.stack([head, np.zeros_like(head), tail], axis=1)
    else:
        order: dict[str, int] = {}
        splits = {}
        for split, table_s in tables.items():
            if table_s is None:
                splits[split] = np.zeros((0, 3), np.int64)
                continue
            head = [order.setdefault(h, len(order)) for h in table_s.column(0)]
            tail = [order.setdefault(t, len(order)) for t in table_s.column(2)]
            splits[split] = np.stack(
                [
                    np.asarray(head, np.int64),
                    np.zeros(len(head), np.int64),
                    np.asarray(tail, np.int64),
                ],
                axis=1,
            )
        entity_ids = list(order)
        raw_names = list(entity_ids)

    # --- relations
    relation_path = folder / GENERIC_RELATION_TEXT
    inverse: list[str | None]
    if relation_path.is_file():
        table = _drop_header(
            read_table(relation_path, min_columns=2, max_columns=3), RELATION_HEADER
        )
        blank += table.skipped_blank
        check_not_empty(relation_path, len(table), "relation file")
        relation_ids, forward, inverse = [], [], []
        first = {}
        for row, line in zip(table.rows, table.lines, strict=True):
            if not row[0]:
                raise DataFormatError(relation_path, line, "empty relation id", "\t".join(row))
            if not row[1]:
                raise DataFormatError(relation_path, line, "empty relation text", row[0])
            if row[0] in first:
                raise DataFormatError(
                    relation_path,
                    line,
                    f"duplicate relation id (first on line {first[row[0]]})",
                    row[0],
                )
            first[row[0]] = line
            relation_ids.append(row[0])
            forward.append(row[1])
            inverse.append(row[2] if len(row) > 2 and row[2] else None)
        rel_by_id, rel_by_text = _build_lookup(relation_ids, forward)
        for split, table_s in tables.items():
            if table_s is not None:
                splits[split][:, 1] = _resolve(
                    table_s.column(1),
                    rel_by_id,
                    rel_by_text,
                    path=table_s.path,
                    lines=table_s.lines,
                    what="relation",
                )
    else:
        rel_order: dict[str, int] = {}
        for split, table_s in tables.items():
            if table_s is not None:
                splits[split][:, 1] = [
                    rel_order.setdefault(r, len(rel_order)) for r in table_s.column(1)
                ]
        relation_ids = list(rel_order)
        forward = list(relation_ids)
        inverse = [None] * len(relation_ids)
    default_inverse = inverse_texts(forward)
    relation_texts = forward + [inv or default_inverse[i] for i, inv in enumerate(inverse)]

    # --- images
    images: list[list[str]] | None = None
    id_index = {value: i for i, value in enumerate(entity_ids)}
    image_dir = folder / GENERIC_IMAGES_DIR
    list_path = folder / GENERIC_IMAGE_LIST
    if image_dir.is_dir() or list_path.is_file():
        images = [[] for _ in entity_ids]
    if image_dir.is_dir():
        unmatched = 0
        for path in sorted(image_dir.iterdir()):
            if not path.is_file() or path.suffix.lower() not in IMAGE_EXTENSIONS:
                continue
            index = _match_image(path.stem, id_index)
            if index is None:
                unmatched += 1
                logger.warning("%s: no entity with this id prefix; image skipped", path)
                continue
            images[index].append(str(path))  # type: ignore[index]
        if unmatched:
            skipped[f"{GENERIC_IMAGES_DIR}/ files matching no entity id"] = unmatched
    if list_path.is_file():
        table = _drop_header(read_table(list_path, min_columns=2), IMAGE_LIST_HEADER)
        blank += table.skipped_blank
        ids_col = table.column(0)
        indices = lookup(ids_col, id_index, path=list_path, lines=table.lines, what="entity id")
        for (_eid, relative), line, index in zip(
            table.rows, table.lines, indices.tolist(), strict=True
        ):
            image = Path(relative) if Path(relative).is_absolute() else folder / relative
            if not image.is_file():
                raise DataFormatError(list_path, line, "image file does not exist", relative)
            images[index].append(str(image))  # type: ignore[index]
    if blank:
        skipped["blank lines"] = blank

    hints = [definition_hints(d) for d in descriptions] if descriptions is not None else None
    names = disambiguate_names(raw_names, ids=entity_ids, hints=hints, texts=descriptions)
    return KnowledgeGraph(
        name=name,
        entity_ids=entity_ids,
        entity_names=names,
        relation_ids=relation_ids,
        relation_texts=relation_texts,
        splits=splits,
        entity_descriptions=descriptions,
        entity_vlm_text=vlm,
        entity_images=images,
        raw_entity_names=raw_names,
        skipped=skipped,
        source=source or str(folder),
    )


def _match_image(stem: str, id_index: dict[str, int]) -> int | None:
    """Entity of an image file stem ``<id>`` or ``<id>_<anything>`` (longest matching id)."""
    if stem in id_index:
        return id_index[stem]
    cut = len(stem)
    while True:
        cut = stem.rfind("_", 0, cut)
        if cut <= 0:
            return None
        if stem[:cut] in id_index:
            return id_index[stem[:cut]]

"""Reader of the IKRL format (WN9-IMG) with its WordNet names, definitions and sample photos.

Folder layout (the embedded copy and ``../shared/data/wn9_img`` share it)::

    wn9_img/
      ikrl/train.txt valid.txt test.txt   head<TAB>tail<TAB>relation  (tail BEFORE relation; CRLF)
      ikrl/entity2id.txt relation2id.txt  id<TAB>index
      wn9_entity2text.tsv                 offset<TAB>name, definition   (offset = id without "n")
      wn18_relation2text.txt              _relation<TAB>readable name   (all 18 WN18 relations)
      sample_images/MANIFEST.tsv + files  file<TAB>wn9_entity<TAB>...

Names are the text before the first ``", "`` of the entity text, definitions the rest. Shared
names (272 in WN9-IMG) get the first distinguishing words of their definition as a hint, e.g.
``"bass (lowest part)"``. The inverse of relation ``r`` is worded ``"reverse of <r>"`` (WN9
holds both hypernym and hyponym, so "hyponym" cannot also name the inverse of hypernym).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from kgt5mm.data.formats.common import (
    check_not_empty,
    humanize_relation,
    id_map_from_rows,
    lookup,
    require_file,
)
from kgt5mm.data.graph import KnowledgeGraph, inverse_texts
from kgt5mm.data.names import definition_hints, disambiguate_names
from kgt5mm.data.parsing import parse_int, read_table
from kgt5mm.errors import DataFormatError
from kgt5mm.typing import (
    IKRL_DIR,
    IKRL_ENTITY2ID,
    IKRL_RELATION2ID,
    IKRL_SPLIT_FILES,
    SAMPLE_IMAGES_DIR,
    SAMPLE_IMAGES_MANIFEST,
    WN9_ENTITY_TEXT,
    WN18_RELATION_TEXT,
)

__all__ = ["is_ikrl_folder", "load_ikrl"]

logger = logging.getLogger(__name__)


def _is_count_line(line: str) -> bool:
    """Whether a first line holds a record count (OpenKE style) rather than a record."""
    try:
        parse_int(line)
    except ValueError:
        return False
    return True


def _ikrl_dir(folder: Path) -> Path:
    return folder / IKRL_DIR if (folder / IKRL_DIR).is_dir() else folder


def is_ikrl_folder(folder: Path) -> bool:
    """Whether ``folder`` looks like an IKRL dataset (``ikrl/entity2id.txt`` or flat)."""
    base = _ikrl_dir(folder)
    return (
        (base / IKRL_ENTITY2ID).is_file()
        and (base / "train.txt").is_file()
        and not _is_count_line(
            (base / IKRL_ENTITY2ID).read_text(errors="replace").split("\n", 1)[0]
        )
    )


def load_ikrl(
    folder: str | Path, *, name: str = "wn9_img", source: str | None = None
) -> KnowledgeGraph:
    """Load an IKRL-format dataset folder (see module docstring) into a KnowledgeGraph.

    :raises DataFormatError: on any malformed file (file, line, value in the message)
    """
    folder = Path(folder)
    base = _ikrl_dir(folder)
    skipped: dict[str, int] = {}

    entity_path = require_file(base / IKRL_ENTITY2ID, "entity2id")
    entity_table = read_table(entity_path, min_columns=2)
    check_not_empty(entity_path, len(entity_table), "entity2id")
    entities = id_map_from_rows(entity_table, key_column=0, index_column=1, what="entity")
    relation_path = require_file(base / IKRL_RELATION2ID, "relation2id")
    relation_table = read_table(relation_path, min_columns=2)
    check_not_empty(relation_path, len(relation_table), "relation2id")
    relations = id_map_from_rows(relation_table, key_column=0, index_column=1, what="relation")
    blank = entity_table.skipped_blank + relation_table.skipped_blank

    splits: dict[str, np.ndarray] = {}
    for split, file_name in IKRL_SPLIT_FILES.items():
        path = require_file(base / file_name, f"{split} split")
        table = read_table(path, min_columns=3)
        check_not_empty(path, len(table), f"{split} split")
        blank += table.skipped_blank
        head = lookup(
            table.column(0), entities.index, path=path, lines=table.lines, what="head entity"
        )
        tail = lookup(
            table.column(1), entities.index, path=path, lines=table.lines, what="tail entity"
        )
        rel = lookup(
            table.column(2), relations.index, path=path, lines=table.lines, what="relation"
        )
        splits[split] = np.stack([head, rel, tail], axis=1)
    if blank:
        skipped["blank lines"] = blank

    # --- names and definitions
    E = len(entities)
    raw_names = list(entities.ids)
    descriptions = [""] * E
    text_path = folder / WN9_ENTITY_TEXT
    if text_path.is_file():
        table = read_table(text_path, min_columns=2, strip_fields=False)
        seen: dict[int, int] = {}
        for (offset, text), line in zip(table.rows, table.lines, strict=True):
            offset = offset.strip()
            key = offset if offset in entities.index else f"n{offset}"
            index = entities.index.get(key)
            if index is None:
                raise DataFormatError(text_path, line, "unknown entity id", offset)
            if index in seen:
                raise DataFormatError(
                    text_path, line, f"duplicate entity id (first on line {seen[index]})", offset
                )
            seen[index] = line
            entity_name, _, definition = text.partition(", ")
            entity_name = entity_name.strip()
            if not entity_name:
                raise DataFormatError(text_path, line, "empty entity name", text)
            raw_names[index] = entity_name
            descriptions[index] = definition.strip()
        missing = E - len(seen)
        if missing:
            logger.warning(
                "%s: %d entities have no text; their id is used as name", text_path, missing
            )
            skipped["entities without text (id used as name)"] = missing
        if table.skipped_blank:
            skipped["blank lines"] = skipped.get("blank lines", 0) + table.skipped_blank
    else:
        logger.warning("%s not found: entity names are the WordNet ids", text_path)
        descriptions = None  # type: ignore[assignment]
    hints = [definition_hints(d) for d in descriptions] if descriptions is not None else None
    names = disambiguate_names(raw_names, ids=entities.ids, hints=hints, texts=descriptions)

    # --- relation texts
    forward = [humanize_relation(r) for r in relations.ids]
    rel_text_path = folder / WN18_RELATION_TEXT
    if rel_text_path.is_file():
        table = read_table(rel_text_path, min_columns=2)
        unused = 0
        for (rid, text), line in zip(table.rows, table.lines, strict=True):
            if not text:
                raise DataFormatError(rel_text_path, line, "empty relation text", rid)
            index = relations.index.get(rid)
            if index is None:
                unused += 1  # WN18 relations that WN9 does not use
                continue
            forward[index] = text
        if unused:
            skipped[f"{WN18_RELATION_TEXT} rows for relations not in the graph"] = unused

    # --- sample images
    images: list[list[str]] | None = None
    manifest = folder / SAMPLE_IMAGES_DIR / SAMPLE_IMAGES_MANIFEST
    if manifest.is_file():
        images = [[] for _ in range(E)]
        table = read_table(manifest, min_columns=2, max_columns=64)
        for row, line in zip(table.rows[0:], table.lines, strict=True):
            if line == table.lines[0] and row[0] == "file":
                continue  # header
            file_name, entity_id = row[0], row[1]
            index = entities.index.get(entity_id)
            if index is None:
                raise DataFormatError(manifest, line, "unknown entity id", entity_id)
            image = manifest.parent / file_name
            if not image.is_file():
                raise DataFormatError(manifest, line, "image file does not exist", file_name)
            images[index].append(str(image))

    return KnowledgeGraph(
        name=name,
        entity_ids=entities.ids,
        entity_names=names,
        relation_ids=relations.ids,
        relation_texts=forward + inverse_texts(forward),
        splits=splits,
        entity_descriptions=descriptions,
        entity_images=images,
        raw_entity_names=raw_names,
        skipped=skipped,
        source=source or str(folder),
    )

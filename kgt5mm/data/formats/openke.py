"""Reader of OpenKE / MMRNS id files with the ``ficha_*`` text files (MKG-W, MKG-Y).

Folder layout::

    entity2id.txt, relation2id.txt   first line = count, then ``uri<SPACE|TAB>index``
    train.txt valid.txt test.txt     ``head<TAB>relation<TAB>tail`` (integer ids)
    ficha_entity_mentions.del        ``index<TAB>Readable_Name`` (underscores for spaces)
    ficha_entity_types.del           ``index<TAB>type``          (optional; MKG-W only)
    ficha_relation_mentions.del      ``index<TAB>relation_name`` (optional)
    ficha_relation_templates.txt     first line = count, then ``index<TAB>Template: ...`` (optional)
    ficha_vlm_desc_setting3.txt      first line = count, then ``index<TAB> text`` (optional)

**Relation templates.** A template holds ``[A]`` and ``[B]``; in the template of query
relation ``q`` (line ``q`` of the body), ``[A]`` is the query entity and ``[B]`` the answer.
Both files hold ``2R`` templates numbered ``0..2R-1`` first (forward ``0..R-1``, inverse
``R..2R-1``), but differ otherwise:

* MKG-W: the count line says 169 (= R) while 338 (= 2R) lines follow; inverse template
  ``R + r`` is forward template ``r`` with ``[A]``/``[B]`` swapped.
* MKG-Y: the count line says 56 (= 2R); lines ``0..55`` are forward templates and hand-written
  inverse wordings (``"[A] is the place of birth of [B]."``), followed by 56 more lines numbered
  ``28..83`` that repeat lines ``0..55`` with ``[A]``/``[B]`` swapped. Those 56 repeated lines
  are skipped (and counted). Five inverse wordings of MKG-Y are not usable as they stand
  (``"[A] deals [B]."`` for edited, livesIn and hasOfficialLanguage; hasNeighbor and dealsWith
  repeat their forward wording): an inverse template that equals another template is replaced by the
  forward template with ``[A]``/``[B]`` swapped (counted in ``skipped``).

**Relation texts** (short phrases, unique over the ``2R`` query relations): the part between
``[A]`` and ``[B]`` when a template reads ``"[A] ... [B]."`` (``"was born in"``,
``"is the place of birth of"``); otherwise the relation mention made readable
(``"narrative location"``) and, for inverse relations, ``"reverse of <mention>"``. Phrases that
two query relations would share fall back to the mention, then get the relation id appended:
MKG-W's P7 (brother) and P9 (sister) share the mention "siblings" and the template
``"[A] has siblings [B]."``, so they become ``"siblings (P7)"`` and ``"siblings (P9)"``.

**Names** come from ``ficha_entity_mentions.del`` (underscores become spaces); shared names are
disambiguated with the entity type (MKG-W) and then the external id. ``entity_vlm_text`` is the
setting-3 VLM description with its leading space removed.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import numpy as np

from kgt5mm.data.formats.common import (
    IdMap,
    check_not_empty,
    humanize_relation,
    id_map_from_rows,
    index_rows,
    require_file,
)
from kgt5mm.data.graph import KnowledgeGraph
from kgt5mm.data.names import disambiguate_names
from kgt5mm.data.parsing import (
    TableRows,
    read_count_header,
    read_int_table,
    read_lines,
    read_table,
)
from kgt5mm.errors import DataFormatError
from kgt5mm.typing import (
    FICHA_ENTITY_MENTIONS,
    FICHA_ENTITY_TYPES,
    FICHA_RELATION_MENTIONS,
    FICHA_RELATION_TEMPLATES,
    FICHA_VLM_DESC,
    INVERSE_PREFIX,
    OPENKE_ENTITY2ID,
    OPENKE_RELATION2ID,
    OPENKE_SPLIT_FILES,
    TEMPLATE_ANSWER,
    TEMPLATE_QUERY,
)

__all__ = ["load_openke", "read_openke_id_map", "template_phrase", "swap_placeholders"]

logger = logging.getLogger(__name__)

_TEMPLATE_PREFIX = "Template:"
_A_FIRST = re.compile(r"^\[A\]\s+(.+?)\s+\[B\]\s*\.?$")


def read_openke_id_map(path: Path, *, what: str, skipped: dict[str, int] | None = None) -> IdMap:
    """Read ``count`` then ``key<SPACE|TAB>index`` lines; checks count, indices, duplicates.

    :param skipped: the graph's skip report; blank lines are added to its ``"blank lines"``
    """
    require_file(path, f"{what}2id")
    lines = read_lines(path)
    count = read_count_header(path, lines)
    table = TableRows(path=path, rows=[], lines=[])
    for number in range(2, len(lines) + 1):
        line = lines[number - 1]
        if not line.strip():
            if skipped is not None:
                skipped["blank lines"] = skipped.get("blank lines", 0) + 1
            continue
        parts = line.rstrip().rsplit(None, 1)
        if len(parts) != 2:
            raise DataFormatError(path, number, f"expected '{what}<space or tab>index'", line)
        table.rows.append([parts[0].strip(), parts[1]])
        table.lines.append(number)
    ids = id_map_from_rows(table, key_column=0, index_column=1, what=what, size=count,
                           size_note=" (count on line 1)")
    if len(table.rows) != count:
        raise DataFormatError(
            path, 1, f"count says {count} but {len(table.rows)} {what}s follow", count
        )
    check_not_empty(path, count, f"{what}2id")
    return ids


def swap_placeholders(template: str) -> str:
    """Exchange ``[A]`` and ``[B]`` in a template."""
    return (
        template.replace(TEMPLATE_QUERY, "\0")
        .replace(TEMPLATE_ANSWER, TEMPLATE_QUERY)
        .replace("\0", TEMPLATE_ANSWER)
    )


def template_phrase(template: str) -> str | None:
    """The words between ``[A]`` and ``[B]`` of ``"[A] ... [B]."`` (underscores -> spaces)."""
    match = _A_FIRST.match(template.strip())
    if match is None:
        return None
    return " ".join(match.group(1).replace("_", " ").split())


def _read_templates(path: Path, R: int, skipped: dict[str, int]) -> list[str]:
    lines = read_lines(path)
    count = read_count_header(path, lines)
    if count not in (R, 2 * R):
        raise DataFormatError(path, 1, f"template count must be R={R} or 2R={2 * R}", count)
    table = read_table(path, min_columns=2, first_line=2, lines=lines)
    if len(table) < 2 * R:
        raise DataFormatError(
            path, None, f"expected at least 2R={2 * R} templates, found {len(table)}"
        )
    templates: list[str] = []
    for q in range(2 * R):
        row, line = table.rows[q], table.lines[q]
        if row[0] != str(q):
            raise DataFormatError(path, line, f"expected template index {q}", row[0])
        text = row[1]
        if text.startswith(_TEMPLATE_PREFIX):
            text = text[len(_TEMPLATE_PREFIX) :].strip()
        if TEMPLATE_QUERY not in text or TEMPLATE_ANSWER not in text:
            raise DataFormatError(
                path, line, f"template must contain {TEMPLATE_QUERY} and {TEMPLATE_ANSWER}", row[1]
            )
        templates.append(text)
    extra = len(table) - 2 * R
    if extra:
        # MKG-Y: a placeholder-swapped repeat of the first 2R lines, numbered from R.
        for k in range(extra):
            row, line = table.rows[2 * R + k], table.lines[2 * R + k]
            text = (
                row[1][len(_TEMPLATE_PREFIX) :].strip()
                if row[1].startswith(_TEMPLATE_PREFIX)
                else row[1]
            )
            if k < 2 * R and swap_placeholders(text) != templates[k]:
                raise DataFormatError(
                    path,
                    line,
                    f"unexpected extra template: lines after the first 2R={2 * R} must repeat them "
                    "with [A] and [B] swapped",
                    row[1],
                )
        skipped[f"{path.name}: swapped repeats of the first 2R templates"] = extra
    from collections import Counter

    counts = Counter(templates)
    replaced = 0
    for q in range(R, 2 * R):
        if counts[templates[q]] > 1:  # an inverse wording shared with another relation
            templates[q] = swap_placeholders(templates[q - R])
            replaced += 1
    if replaced:
        logger.info(
            "%s: %d inverse templates repeated an earlier one and were replaced", path, replaced
        )
        skipped[
            f"{path.name}: inverse templates with repeated wording (swapped forward template used)"
        ] = replaced
    return templates


def _relation_texts(
    mentions: list[str], templates: list[str] | None, relation_ids: list[str]
) -> list[str]:
    """Unique phrases for the 2R query relations (see the module docstring)."""
    R = len(mentions)
    readable = [humanize_relation(m) for m in mentions]
    short_ids = [r.rstrip("/").rsplit("/", 1)[-1] for r in relation_ids]

    def fallback(q: int) -> str:
        return readable[q] if q < R else f"{INVERSE_PREFIX}{readable[q - R]}"

    texts: list[str] = []
    for q in range(2 * R):
        phrase = template_phrase(templates[q]) if templates is not None else None
        texts.append(phrase if phrase is not None else fallback(q))
    # Shared phrases: every member falls back to its mention; still shared: add the id.
    for attempt in range(2):
        groups: dict[str, list[int]] = {}
        for q, text in enumerate(texts):
            groups.setdefault(text, []).append(q)
        shared = [members for members in groups.values() if len(members) > 1]
        if not shared:
            break
        for members in shared:
            for q in members:
                texts[q] = fallback(q) if attempt == 0 else f"{fallback(q)} ({short_ids[q % R]})"
    if len(set(texts)) != len(texts):  # pragma: no cover - ids are unique
        raise DataFormatError(FICHA_RELATION_MENTIONS, None, "relation texts are not unique")
    return texts


def load_openke(folder: str | Path, *, name: str, source: str | None = None) -> KnowledgeGraph:
    """Load an OpenKE/MMRNS dataset folder (see module docstring).

    :raises DataFormatError: on any malformed file (file, line, value in the message)
    """
    folder = Path(folder)
    skipped: dict[str, int] = {}
    entities = read_openke_id_map(folder / OPENKE_ENTITY2ID, what="entity", skipped=skipped)
    relations = read_openke_id_map(folder / OPENKE_RELATION2ID, what="relation", skipped=skipped)
    E, R = len(entities), len(relations)

    splits: dict[str, np.ndarray] = {}
    blank = 0
    for split, file_name in OPENKE_SPLIT_FILES.items():
        path = require_file(folder / file_name, f"{split} split")
        values, lines, skipped_blank = read_int_table(path, columns=3)
        blank += skipped_blank
        check_not_empty(path, len(values), f"{split} split")
        for column, (what, limit) in enumerate(
            (("head entity", E), ("relation", R), ("tail entity", E))
        ):
            bad = np.flatnonzero((values[:, column] < 0) | (values[:, column] >= limit))
            if len(bad):
                row = int(bad[0])
                raise DataFormatError(
                    path,
                    int(lines[row]),
                    f"unknown {what} id (expected 0..{limit - 1})",
                    int(values[row, column]),
                )
        splits[split] = values

    # --- names
    mention_path = require_file(folder / FICHA_ENTITY_MENTIONS, "entity mentions")
    table = read_table(mention_path, min_columns=2)
    blank += table.skipped_blank
    raw, where = index_rows(table, E, what="entity", allow_missing=False)
    raw_names: list[str] = []
    for i, value in enumerate(raw):
        text = " ".join((value or "").replace("_", " ").split())
        if not text:
            raise DataFormatError(mention_path, where[i], "empty entity name", value)
        raw_names.append(text)

    types: list[str] | None = None
    type_path = folder / FICHA_ENTITY_TYPES
    if type_path.is_file():
        table = read_table(type_path, min_columns=2)
        blank += table.skipped_blank
        values_t, _ = index_rows(table, E, what="entity", allow_missing=True)
        types = [" ".join((v or "").replace("_", " ").split()) for v in values_t]
    short_ids = [e.rstrip("/").rsplit("/", 1)[-1] for e in entities.ids]
    hints = [[t] if t else [] for t in types] if types is not None else None
    if hints is not None:
        hints = [h + [sid] for h, sid in zip(hints, short_ids, strict=True)]
    else:
        hints = [[sid] for sid in short_ids]
    names = disambiguate_names(raw_names, ids=entities.ids, hints=hints)

    # --- relations
    mentions = [humanize_relation(r.rstrip("/").rsplit("/", 1)[-1]) for r in relations.ids]
    rel_mention_path = folder / FICHA_RELATION_MENTIONS
    if rel_mention_path.is_file():
        table = read_table(rel_mention_path, min_columns=2)
        blank += table.skipped_blank
        values_r, where_r = index_rows(table, R, what="relation", allow_missing=False)
        for i, value in enumerate(values_r):
            if not value:
                raise DataFormatError(rel_mention_path, where_r[i], "empty relation name", value)
        mentions = [v or "" for v in values_r]
    templates: list[str] | None = None
    template_path = folder / FICHA_RELATION_TEMPLATES
    if template_path.is_file():
        templates = _read_templates(template_path, R, skipped)
    relation_texts = _relation_texts(mentions, templates, relations.ids)

    # --- VLM-written descriptions
    vlm: list[str] | None = None
    vlm_path = folder / FICHA_VLM_DESC
    if vlm_path.is_file():
        lines = read_lines(vlm_path)
        count = read_count_header(vlm_path, lines)
        table = read_table(vlm_path, min_columns=2, first_line=2, lines=lines, strip_fields=False)
        blank += table.skipped_blank
        if count != len(table):
            raise DataFormatError(
                vlm_path, 1, f"count says {count} but {len(table)} rows follow", count
            )
        for row in table.rows:
            row[0] = row[0].strip()
        values_v, _ = index_rows(table, E, what="entity", allow_missing=True)
        vlm = [(v or "").strip() for v in values_v]
        missing = sum(1 for v in values_v if v is None)
        if missing:
            skipped[f"{vlm_path.name}: entities without a description"] = missing
    if blank:
        skipped["blank lines"] = skipped.get("blank lines", 0) + blank

    return KnowledgeGraph(
        name=name,
        entity_ids=entities.ids,
        entity_names=names,
        relation_ids=relations.ids,
        relation_texts=relation_texts,
        splits=splits,
        entity_descriptions=None,
        entity_vlm_text=vlm,
        entity_images=None,
        entity_types=types,
        relation_templates=templates,
        raw_entity_names=raw_names,
        skipped=skipped,
        source=source or str(folder),
    )

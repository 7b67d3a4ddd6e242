"""The caption cache (JSONL) and the caption store the context builder reads.

Cache format: one JSON object per line, append-only, written by ``kgt5mm caption`` and by the
importers of precomputed text. Fields of a record (:class:`CaptionRecord`)::

    kind            "relevance" | "description" | "link" | "summary"
    entities        external entity ids: [entity] or [entity, neighbour]
    images          image ids (file names) the answer is about ([] for imported text)
    model           VLM id or path, or "import:<file name>" for precomputed text
    prompt_id, prompt_version   the prompt that produced it ("import", 0 for imported text)
    status          "ok" or "error" (then ``error`` holds the reason, e.g. "missing image")
    text            generated text (description / link / summary)
    p_yes, kept     relevance filter: normalised P(Yes) and whether p_yes >= threshold
    relation        relation id of a link caption

A record's key is (kind, entities, images, model, prompt_id, prompt_version); a rerun skips keys
already present. Each batch is appended and fsync'd, so a killed run loses at most the batch in
flight; a truncated last line (the only damage a kill can do) is ignored and counted by
:func:`read_cache`, and :func:`repair_cache` cuts it off before new lines are appended.

User caption files (:func:`load_caption_file`):

* ``.jsonl``: records as above; only ``kind``, ``entities`` and ``text`` are required.
* ``.tsv``: ``entity<TAB>text`` (an entity-level description) or
  ``entity<TAB>neighbour<TAB>text`` (a link caption); entities by external id or unique name;
  lines starting with ``#`` are comments.
* ``ficha_vlm_desc_*.txt`` (MKG-W / MKG-Y): first line the count, then ``index<TAB>text`` with
  the dataset's entity index (:func:`load_vlm_desc_file`).

:class:`CaptionStore` turns records into per-entity text and per-pair link captions.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kgt5mm.data.parsing import parse_int
from kgt5mm.errors import DataFormatError, KGT5MMError

if TYPE_CHECKING:
    from kgt5mm.data import KnowledgeGraph

__all__ = [
    "CaptionRecord",
    "CacheReadResult",
    "CaptionStore",
    "KINDS",
    "read_cache",
    "repair_cache",
    "append_records",
    "load_caption_file",
    "load_vlm_desc_file",
]

logger = logging.getLogger(__name__)

#: kinds of cache records
KINDS: tuple[str, ...] = ("relevance", "description", "link", "summary")

CacheKey = tuple[str, tuple[str, ...], tuple[str, ...], str, str, int]


@dataclass
class CaptionRecord:
    """One line of the caption cache (see the module docstring for the fields)."""

    kind: str
    entities: tuple[str, ...]
    images: tuple[str, ...] = ()
    model: str = ""
    prompt_id: str = ""
    prompt_version: int = 0
    status: str = "ok"
    text: str = ""
    p_yes: float | None = None
    kept: bool | None = None
    relation: str | None = None
    error: str | None = None

    @property
    def key(self) -> CacheKey:
        """Identity of the work item: (kind, entities, images, model, prompt id, version)."""
        return (self.kind, tuple(self.entities), tuple(self.images), self.model,
                self.prompt_id, int(self.prompt_version))

    def to_json(self) -> str:
        """One JSON line (no newline); ``None`` fields are left out."""
        data = {k: v for k, v in asdict(self).items() if v is not None}
        data["entities"] = list(self.entities)
        data["images"] = list(self.images)
        return json.dumps(data, ensure_ascii=False, sort_keys=False)

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, path: str | Path = "<dict>", line: int | None = None
                  ) -> CaptionRecord:
        """Build from a decoded JSON object; a :class:`DataFormatError` if malformed."""
        if not isinstance(data, dict):
            raise DataFormatError(path, line, "a caption record must be a JSON object", data)
        for required in ("kind", "entities"):
            if required not in data:
                raise DataFormatError(path, line, f"caption record misses {required!r}", data)
        if data["kind"] not in KINDS:
            raise DataFormatError(path, line, f"kind must be one of {KINDS}", data["kind"])
        entities = data["entities"]
        if isinstance(entities, str) or not isinstance(entities, list) or not 1 <= len(entities) <= 2:
            raise DataFormatError(path, line, "entities must be a list of 1 or 2 ids", entities)
        known = {f for f in cls.__dataclass_fields__}
        values = {k: v for k, v in data.items() if k in known}
        values["entities"] = tuple(str(e) for e in entities)
        values["images"] = tuple(str(i) for i in data.get("images", ()))
        values["prompt_version"] = int(data.get("prompt_version", 0))
        return cls(**values)


@dataclass
class CacheReadResult:
    """What :func:`read_cache` found: the records (last one wins per key) and the damage."""

    records: dict[CacheKey, CaptionRecord] = field(default_factory=dict)
    num_lines: int = 0
    num_duplicates: int = 0
    truncated_last_line: bool = False


def read_cache(paths: str | Path | Sequence[str | Path]) -> CacheReadResult:
    """Read one or more cache files (missing files are empty).

    A last line without its newline that is not valid JSON is the trace of a killed writer: it is
    ignored and reported in ``truncated_last_line``. Any other malformed line is a
    :class:`DataFormatError` naming the file and line.
    """
    result = CacheReadResult()
    for path in [paths] if isinstance(paths, (str, Path)) else paths:
        path = Path(path)
        if not path.exists():
            continue
        data = path.read_bytes()
        lines = data.split(b"\n")
        complete = data.endswith(b"\n") or not data
        for number, raw in enumerate(lines, start=1):
            if not raw.strip():
                continue
            is_last_partial = number == len(lines) and not complete
            try:
                obj = json.loads(raw.decode("utf-8"))
                record = CaptionRecord.from_dict(obj, path=path, line=number)
            except (json.JSONDecodeError, UnicodeDecodeError, DataFormatError) as error:
                if is_last_partial:
                    logger.warning("%s: ignoring truncated last line %d (killed writer?)", path, number)
                    result.truncated_last_line = True
                    continue
                if isinstance(error, DataFormatError):
                    raise
                raise DataFormatError(path, number, f"invalid JSON: {error}", raw[:80]) from None
            result.num_lines += 1
            if record.key in result.records:
                result.num_duplicates += 1
            result.records[record.key] = record
    return result


def repair_cache(path: str | Path) -> bool:
    """Cut off a truncated last line (no trailing newline) so appends start on a fresh line.

    Returns True when something was cut. A complete last line missing only its newline gets the
    newline instead.
    """
    path = Path(path)
    if not path.exists():
        return False
    data = path.read_bytes()
    if not data or data.endswith(b"\n"):
        return False
    start = data.rfind(b"\n") + 1
    tail = data[start:]
    try:
        CaptionRecord.from_dict(json.loads(tail.decode("utf-8")), path=path)
        with open(path, "ab") as handle:
            handle.write(b"\n")
            handle.flush()
            os.fsync(handle.fileno())
        return False
    except (json.JSONDecodeError, UnicodeDecodeError, DataFormatError):
        pass
    with open(path, "r+b") as handle:
        handle.truncate(start)
        handle.flush()
        os.fsync(handle.fileno())
    logger.warning("%s: cut a truncated last line of %d bytes", path, len(tail))
    return True


def append_records(path: str | Path, records: Iterable[CaptionRecord]) -> int:
    """Append records as complete lines in one write, then flush and fsync; returns the count."""
    payload = "".join(r.to_json() + "\n" for r in records).encode("utf-8")
    if not payload:
        return 0
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "ab") as handle:
        handle.write(payload)
        handle.flush()
        os.fsync(handle.fileno())
    return payload.count(b"\n")


def _entity_lookup(kg: KnowledgeGraph) -> dict[str, int]:
    lookup = {name: i for i, name in enumerate(kg.entity_names)}
    lookup.update({eid: i for i, eid in enumerate(kg.entity_ids)})  # ids win over names
    return lookup


def load_vlm_desc_file(path: str | Path, kg: KnowledgeGraph, *, model: str | None = None
                       ) -> list[CaptionRecord]:
    """Read a ``ficha_vlm_desc_*.txt`` file (count line, then ``index<TAB>text``).

    The index is the dataset's entity index, which is the internal id of the loaded graph
    (kgt5mm.data keeps entity2id order). Returns ``description`` records.
    """
    path = Path(path)
    model = model or f"import:{path.name}"
    lines = path.read_text(encoding="utf-8").splitlines()
    if not lines:
        raise DataFormatError(path, None, "empty file")
    try:
        count = parse_int(lines[0])
    except ValueError:
        raise DataFormatError(path, 1, "first line must be the number of entries", lines[0]) from None
    records = []
    for number, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        index, sep, text = line.partition("\t")
        if not sep or not (index.strip().isascii() and index.strip().isdigit()):
            raise DataFormatError(path, number, "expected index<TAB>text", line[:80])
        entity = int(index)
        if not 0 <= entity < kg.num_entities:
            raise DataFormatError(path, number, f"entity index outside [0, {kg.num_entities})", entity)
        records.append(CaptionRecord(kind="description", entities=(kg.entity_ids[entity],),
                                     model=model, prompt_id="import", text=text.strip()))
    if len(records) != count:
        raise DataFormatError(path, 1, f"header says {count} entries, file has {len(records)}", count)
    return records


def load_caption_file(path: str | Path, kg: KnowledgeGraph) -> list[CaptionRecord]:
    """Load a user caption file (``.jsonl``, ``.tsv`` or ``ficha_vlm_desc_*.txt``) as records.

    Entities are given by external id or unique name; unknown ones are a
    :class:`DataFormatError` (nothing is dropped silently).
    """
    path = Path(path)
    if path.name.startswith("ficha_vlm_desc"):
        return load_vlm_desc_file(path, kg)
    lookup = _entity_lookup(kg)

    def resolve(value: str, number: int) -> str:
        if value not in lookup:
            raise DataFormatError(path, number, "unknown entity (neither an id nor a name)", value)
        return kg.entity_ids[lookup[value]]

    records: list[CaptionRecord] = []
    if path.suffix == ".jsonl":
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as error:
                raise DataFormatError(path, number, f"invalid JSON: {error}", line[:80]) from None
            if isinstance(obj, dict):
                obj.setdefault("model", f"import:{path.name}")
                obj.setdefault("prompt_id", "import")
            record = CaptionRecord.from_dict(obj, path=path, line=number)
            record.entities = tuple(resolve(e, number) for e in record.entities)
            records.append(record)
    elif path.suffix in (".tsv", ".txt"):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip() or line.startswith("#"):
                continue
            cols = line.split("\t")
            if len(cols) == 2:
                records.append(CaptionRecord(kind="description", entities=(resolve(cols[0], number),),
                                             model=f"import:{path.name}", prompt_id="import",
                                             text=cols[1].strip()))
            elif len(cols) == 3:
                records.append(CaptionRecord(
                    kind="link", entities=(resolve(cols[0], number), resolve(cols[1], number)),
                    model=f"import:{path.name}", prompt_id="import", text=cols[2].strip()))
            else:
                raise DataFormatError(path, number, "expected 2 or 3 tab-separated columns", line[:80])
    else:
        raise DataFormatError(path, None, "caption files must be .jsonl, .tsv or ficha_vlm_desc_*")
    return records


class CaptionStore:
    """Entity-level text per entity and link captions per (entity, neighbour) pair.

    Built from cache records (:meth:`from_records`, :meth:`from_cache`), user files
    (:meth:`from_files`) or empty. Internal entity ids throughout.
    """

    def __init__(self, entity_text: dict[int, str] | None = None,
                 link_text: dict[tuple[int, int], str] | None = None) -> None:
        self.entity_text: dict[int, str] = dict(entity_text or {})
        self.link_text: dict[tuple[int, int], str] = dict(link_text or {})

    def __len__(self) -> int:
        return len(self.entity_text) + len(self.link_text)

    def entity(self, entity: int) -> str:
        """Entity-level text of ``entity`` ("" when none)."""
        return self.entity_text.get(entity, "")

    def link(self, entity: int, neighbour: int) -> str:
        """Link caption of the pair, looked up in both orders ("" when none)."""
        return self.link_text.get((entity, neighbour)) or self.link_text.get((neighbour, entity), "")

    @classmethod
    def from_records(cls, records: Iterable[CaptionRecord], kg: KnowledgeGraph) -> CaptionStore:
        """Keep ``ok`` description/link/summary records with text; later records win, except that
        an image-set summary only fills a pair that has no link caption."""
        index = {eid: i for i, eid in enumerate(kg.entity_ids)}
        store = cls()
        summaries: dict[tuple[int, int], str] = {}
        unknown = 0
        for record in records:
            if record.status != "ok" or not record.text or record.kind == "relevance":
                continue
            ids = [index.get(e) for e in record.entities]
            if any(i is None for i in ids):
                unknown += 1
                continue
            if record.kind == "description" and len(ids) == 1:
                store.entity_text[ids[0]] = record.text
            elif record.kind == "link" and len(ids) == 2:
                store.link_text[(ids[0], ids[1])] = record.text
            elif record.kind == "summary" and len(ids) == 2:
                summaries[(ids[0], ids[1])] = record.text
        for pair, text in summaries.items():
            if not store.link(*pair):
                store.link_text[pair] = text
        if unknown:
            logger.warning("%d caption records name entities that are not in graph %s", unknown, kg.name)
        return store

    @classmethod
    def from_cache(cls, path: str | Path, kg: KnowledgeGraph, *, model: str | None = None
                   ) -> CaptionStore:
        """Read a caption cache (and its leftover ``.part-*`` shards), optionally one model only."""
        path = Path(path)
        parts = sorted(path.parent.glob(path.name + ".part-*"))
        records = read_cache([path, *parts]).records.values()
        if model is not None:
            records = [r for r in records if r.model == model]
        return cls.from_records(records, kg)

    @classmethod
    def from_files(cls, paths: Iterable[str | Path], kg: KnowledgeGraph) -> CaptionStore:
        """Merge caption caches (``.jsonl`` written by kgt5mm caption) and user files."""
        records: list[CaptionRecord] = []
        ids = set(kg.entity_ids)
        for path in paths:
            path = Path(path)
            if not path.is_file():
                raise KGT5MMError(f"caption file {str(path)!r} not found")
            if path.suffix == ".jsonl":  # a kgt5mm caption cache: records by entity id
                result = read_cache(path)
                if result.records and all(r.model and all(e in ids for e in r.entities)
                                          for r in result.records.values()):
                    records.extend(result.records.values())
                    continue
            # user files (and caches naming entities by name): every entity is resolved, and
            # an unknown one is a DataFormatError naming the file and line
            records.extend(load_caption_file(path, kg))
        return cls.from_records(records, kg)

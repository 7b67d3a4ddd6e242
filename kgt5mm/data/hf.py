"""Hugging Face datasets export and import (Parquet), so a graph can be shared as a Hub dataset.

``export_hf(kg, out_dir)`` writes a folder that the Hub shows as a dataset with three configs::

    out_dir/
      README.md                    dataset card; YAML ``configs`` map the Parquet files
      kgt5mm_graph.json            name, sizes, skipped counts, format version
      triples/{train,valid,test}.parquet   head, relation, tail (int64) + ids and names
      entities/entities.parquet    index, id, name, raw_name, description, vlm_text, type, images
      relations/relations.parquet  index, id, text, inverse_text, template, inverse_template
      images/                      copies of the entity images (paths in entities are relative)

Upload it with ``huggingface_hub.HfApi().upload_folder(folder_path=out_dir, repo_id=...,
repo_type="dataset")``; anyone loads it back with ``KnowledgeGraph.from_hf_dataset(repo_id)``
or ``load_graph(out_dir)``. ``datasets.load_dataset(repo_id, "triples")`` works as usual.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from kgt5mm.data.graph import KnowledgeGraph
from kgt5mm.errors import DataFormatError, KGT5MMError
from kgt5mm.files import atomic_dir
from kgt5mm.typing import (
    HF_ENTITIES_CONFIG,
    HF_MANIFEST,
    HF_RELATIONS_CONFIG,
    HF_TRIPLES_CONFIG,
    SPLITS,
)

__all__ = ["to_hf_dataset", "from_hf_dataset", "export_hf", "FORMAT_VERSION"]

logger = logging.getLogger(__name__)

#: Version of the exported layout, stored in ``kgt5mm_graph.json``.
FORMAT_VERSION = 1


def _tables(
    kg: KnowledgeGraph, image_paths: list[list[str]] | None = None
) -> dict[str, dict[str, list[Any]]]:
    R = kg.num_relations
    tables: dict[str, dict[str, list[Any]]] = {}
    for split in SPLITS:
        t = kg.splits[split]
        tables[split] = {
            "head": t[:, 0].tolist(),
            "relation": t[:, 1].tolist(),
            "tail": t[:, 2].tolist(),
            "head_name": [kg.entity_names[i] for i in t[:, 0].tolist()],
            "relation_text": [kg.relation_texts[i] for i in t[:, 1].tolist()],
            "tail_name": [kg.entity_names[i] for i in t[:, 2].tolist()],
        }
    E = kg.num_entities
    images = image_paths if image_paths is not None else kg.entity_images
    tables["entities"] = {
        "index": list(range(E)),
        "id": list(kg.entity_ids),
        "name": list(kg.entity_names),
        "raw_name": list(kg.raw_entity_names),
        "description": list(kg.entity_descriptions)
        if kg.entity_descriptions is not None
        else [None] * E,
        "vlm_text": list(kg.entity_vlm_text) if kg.entity_vlm_text is not None else [None] * E,
        "type": list(kg.entity_types) if kg.entity_types is not None else [None] * E,
        "images": [list(p) for p in images] if images is not None else [None] * E,
    }
    templates = kg.relation_templates
    tables["relations"] = {
        "index": list(range(R)),
        "id": list(kg.relation_ids),
        "text": kg.relation_texts[:R],
        "inverse_text": kg.relation_texts[R:],
        "template": templates[:R] if templates is not None else [None] * R,
        "inverse_template": templates[R:] if templates is not None else [None] * R,
    }
    return tables


def to_hf_dataset(kg: KnowledgeGraph) -> Any:
    """The graph as a ``datasets.DatasetDict`` with five members.

    ``"train"``, ``"valid"``, ``"test"``: columns ``head``, ``relation``, ``tail`` (int64
    internal ids) and ``head_name``, ``relation_text``, ``tail_name``; ``"entities"``: one row
    per entity; ``"relations"``: one row per relation (see the module docstring). The members
    have different columns, so push them as separate configs (:func:`export_hf` does).
    """
    import datasets

    tables = _tables(kg)
    result = datasets.DatasetDict(
        {key: datasets.Dataset.from_dict(value) for key, value in tables.items()}
    )
    return result


def _write_parquet(columns: dict[str, list[Any]], path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path.parent.mkdir(parents=True, exist_ok=True)  # inside export_hf's temporary folder
    pq.write_table(pa.table(columns), path)


def _write_text(text: str, path: Path) -> None:
    path.write_text(text, encoding="utf-8")  # inside export_hf's temporary folder


def _card(kg: KnowledgeGraph) -> str:
    lines = [
        "---",
        "configs:",
        f"- config_name: {HF_TRIPLES_CONFIG}",
        "  default: true",
        "  data_files:",
    ]
    for split in SPLITS:
        lines += [f"  - split: {split}", f"    path: {HF_TRIPLES_CONFIG}/{split}.parquet"]
    for config in (HF_ENTITIES_CONFIG, HF_RELATIONS_CONFIG):
        lines += [
            f"- config_name: {config}",
            "  data_files:",
            "  - split: train",
            f"    path: {config}/{config}.parquet",
        ]
    lines += ["tags:", "- knowledge-graph", "- link-prediction", "- kgt5mm", "---", ""]
    sizes = " / ".join(str(len(kg.splits[s])) for s in SPLITS)
    lines += [
        f"# {kg.name}",
        "",
        f"Knowledge graph exported by kgt5mm: {kg.num_entities} entities, "
        f"{kg.num_relations} relations, train / valid / test = {sizes} triples.",
        "",
        'Load it with `kgt5mm.data.KnowledgeGraph.from_hf_dataset("<repo id or folder>")`.',
        "Configs: `triples` (head, relation, tail as integer ids plus names), `entities`, "
        "`relations`. Check the licence of the source data before sharing.",
        "",
    ]
    return "\n".join(lines)


def export_hf(kg: KnowledgeGraph, out_dir: str | Path) -> Path:
    """Write ``kg`` as a Hub-ready Parquet dataset folder (layout in the module docstring).

    Entity images are copied to ``out_dir/images/`` as ``<entity index>_<k><ext>``. The folder
    is written whole to a temporary folder and renamed into place: an earlier export there is
    replaced, never mixed with this one; a non-empty folder that is not an export is refused.
    """
    with atomic_dir(out_dir, marker=HF_MANIFEST) as tmp:
        _export_into(kg, tmp)
    logger.info("exported %r to %s", kg, out_dir)
    return Path(out_dir)


def _export_into(kg: KnowledgeGraph, out: Path) -> None:
    relative_images: list[list[str]] | None = None
    if kg.entity_images is not None:
        relative_images = []
        image_dir = out / "images"
        for index, paths in enumerate(kg.entity_images):
            kept = []
            for k, source in enumerate(paths):
                source_path = Path(source)
                target = image_dir / f"{index}_{k}{source_path.suffix.lower()}"
                image_dir.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(source_path, target)
                kept.append(target.relative_to(out).as_posix())
            relative_images.append(kept)
    tables = _tables(kg, relative_images)
    for split in SPLITS:
        _write_parquet(tables[split], out / HF_TRIPLES_CONFIG / f"{split}.parquet")
    _write_parquet(tables["entities"], out / HF_ENTITIES_CONFIG / f"{HF_ENTITIES_CONFIG}.parquet")
    _write_parquet(
        tables["relations"], out / HF_RELATIONS_CONFIG / f"{HF_RELATIONS_CONFIG}.parquet"
    )
    manifest = {
        "format": "kgt5mm-graph",
        "format_version": FORMAT_VERSION,
        "name": kg.name,
        "num_entities": kg.num_entities,
        "num_relations": kg.num_relations,
        "triples": {s: len(kg.splits[s]) for s in SPLITS},
        "has": {
            "descriptions": kg.entity_descriptions is not None,
            "vlm_text": kg.entity_vlm_text is not None,
            "types": kg.entity_types is not None,
            "images": kg.entity_images is not None,
            "templates": kg.relation_templates is not None,
        },
        "skipped": kg.skipped,
    }
    _write_text(json.dumps(manifest, indent=2) + "\n", out / HF_MANIFEST)
    _write_text(_card(kg), out / "README.md")


def _columns_from_dataset(dataset: Any) -> dict[str, list[Any]]:
    return {name: dataset[name] for name in dataset.column_names}


def _read_folder(folder: Path) -> tuple[dict[str, dict[str, list[Any]]], dict[str, Any]]:
    import pyarrow.parquet as pq

    manifest_path = folder / HF_MANIFEST
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise DataFormatError(manifest_path, error.lineno, f"invalid JSON: {error.msg}") from None
    if manifest.get("format_version", 0) > FORMAT_VERSION:
        raise DataFormatError(
            manifest_path,
            None,
            "written by a newer kgt5mm; upgrade to read it",
            manifest.get("format_version"),
        )
    tables: dict[str, dict[str, list[Any]]] = {}
    paths = {s: folder / HF_TRIPLES_CONFIG / f"{s}.parquet" for s in SPLITS}
    paths["entities"] = folder / HF_ENTITIES_CONFIG / f"{HF_ENTITIES_CONFIG}.parquet"
    paths["relations"] = folder / HF_RELATIONS_CONFIG / f"{HF_RELATIONS_CONFIG}.parquet"
    for key, path in paths.items():
        if not path.is_file():
            raise DataFormatError(path, None, "missing Parquet file of the exported graph")
        tables[key] = pq.read_table(path).to_pydict()
    return tables, manifest


def _graph_from_tables(
    tables: dict[str, dict[str, list[Any]]],
    *,
    name: str,
    base: Path | None,
    skipped: dict[str, int] | None,
    source: str,
) -> KnowledgeGraph:
    entities = tables["entities"]
    relations = tables["relations"]
    if entities["index"] != list(range(len(entities["index"]))):
        raise KGT5MMError(f"{source}: entity rows must be in index order 0..E-1")
    if relations["index"] != list(range(len(relations["index"]))):
        raise KGT5MMError(f"{source}: relation rows must be in index order 0..R-1")

    def optional(column: list[Any]) -> list[Any] | None:
        return None if all(v is None for v in column) else column

    images = optional(entities["images"])
    if images is not None:
        images = [
            [
                str(base / p) if base is not None and not Path(p).is_absolute() else p
                for p in (paths or [])
            ]
            for paths in images
        ]
    templates = None
    if optional(relations["template"]) is not None:
        templates = list(relations["template"]) + list(relations["inverse_template"])
    splits = {
        s: np.stack(
            [np.asarray(tables[s][c], dtype=np.int64) for c in ("head", "relation", "tail")], axis=1
        ).reshape(-1, 3)
        for s in SPLITS
    }
    return KnowledgeGraph(
        name=name,
        entity_ids=entities["id"],
        entity_names=entities["name"],
        relation_ids=relations["id"],
        relation_texts=list(relations["text"]) + list(relations["inverse_text"]),
        splits=splits,
        entity_descriptions=optional(entities["description"]),
        entity_vlm_text=optional(entities["vlm_text"]),
        entity_images=images,
        entity_types=optional(entities["type"]),
        relation_templates=templates,
        raw_entity_names=entities["raw_name"],
        skipped=skipped,
        source=source,
    )


def from_hf_dataset(source: Any, *, name: str | None = None) -> KnowledgeGraph:
    """Rebuild a graph from a ``DatasetDict`` (:func:`to_hf_dataset`), a folder written by
    :func:`export_hf`, or a Hub dataset id holding such a folder.

    :raises DataFormatError: when a folder misses files of the layout
    """
    if isinstance(source, (str, Path)) and Path(source).is_dir():
        folder = Path(source)
        tables, manifest = _read_folder(folder)
        return _graph_from_tables(
            tables,
            name=name or manifest.get("name", folder.name),
            base=folder,
            skipped=manifest.get("skipped"),
            source=str(folder),
        )
    if isinstance(source, str):  # a Hub dataset id
        from huggingface_hub import snapshot_download

        folder = Path(snapshot_download(repo_id=source, repo_type="dataset"))
        return from_hf_dataset(folder, name=name or source.rsplit("/", 1)[-1])
    members = {
        key: _columns_from_dataset(source[key]) for key in (*SPLITS, "entities", "relations")
    }
    return _graph_from_tables(
        members, name=name or "hf_graph", base=None, skipped=None, source="datasets"
    )

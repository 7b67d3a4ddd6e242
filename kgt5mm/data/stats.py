"""Dataset statistics and validation report, as printed by ``kgt5mm data check``.

::

    from kgt5mm.data.stats import graph_statistics, format_table
    print(format_table(graph_statistics(kg)))
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from kgt5mm.data.graph import KnowledgeGraph
from kgt5mm.typing import SPLITS

__all__ = ["graph_statistics", "format_table"]


def _unseen(kg: KnowledgeGraph, split: str) -> tuple[int, int, int]:
    """(entities, relations, triples) of ``split`` that do not occur in train."""
    train = kg.splits["train"]
    seen_e = np.zeros(kg.num_entities, dtype=bool)
    seen_e[train[:, 0]] = True
    seen_e[train[:, 2]] = True
    seen_r = np.zeros(kg.num_relations, dtype=bool)
    seen_r[train[:, 1]] = True
    triples = kg.splits[split]
    entities = np.unique(np.concatenate([triples[:, 0], triples[:, 2]]))
    relations = np.unique(triples[:, 1])
    bad_triples = ~seen_e[triples[:, 0]] | ~seen_e[triples[:, 2]] | ~seen_r[triples[:, 1]]
    return int((~seen_e[entities]).sum()), int((~seen_r[relations]).sum()), int(bad_triples.sum())


def _duplicates(triples: np.ndarray) -> int:
    if len(triples) == 0:
        return 0
    return int(len(triples) - len(np.unique(triples, axis=0)))


def _overlap(a: np.ndarray, b: np.ndarray) -> int:
    if len(a) == 0 or len(b) == 0:
        return 0
    set_a = {tuple(row) for row in a.tolist()}
    return sum(1 for row in b.tolist() if tuple(row) in set_a)


def graph_statistics(kg: KnowledgeGraph) -> list[tuple[str, str]]:
    """Rows ``(statistic, value)`` describing and validating ``kg``.

    Covers sizes, shared names, missing text and images, test/valid entities and relations
    unseen in train, duplicate and leaking triples, and what the loader skipped.
    """
    rows: list[tuple[str, str]] = [
        ("dataset", kg.name),
        ("source", str(kg.source)),
        ("entities", f"{kg.num_entities:,}"),
        ("relations", f"{kg.num_relations:,}"),
    ]
    for split in SPLITS:
        rows.append((f"{split} triples", f"{len(kg.splits[split]):,}"))
    shared = kg.shared_name_count
    renamed = sum(1 for a, b in zip(kg.raw_entity_names, kg.entity_names, strict=True) if a != b)
    rows.append(("shared names (before disambiguation)", f"{shared:,}"))
    rows.append(("entities with a disambiguated name", f"{renamed:,}"))

    def missing(values: Sequence[str] | None) -> str:
        if values is None:
            return "all (not provided)"
        return f"{sum(1 for v in values if not v):,}"

    rows.append(("entities without description", missing(kg.entity_descriptions)))
    rows.append(("entities without VLM text", missing(kg.entity_vlm_text)))
    if kg.entity_descriptions is None and kg.entity_vlm_text is None:
        no_text = kg.num_entities
    else:
        desc = kg.entity_descriptions or [""] * kg.num_entities
        vlm = kg.entity_vlm_text or [""] * kg.num_entities
        no_text = sum(1 for d, v in zip(desc, vlm, strict=True) if not d and not v)
    rows.append(("entities without any text", f"{no_text:,}"))
    if kg.entity_images is None:
        rows.append(("entities without images", "all (not provided)"))
    else:
        with_images = sum(1 for p in kg.entity_images if p)
        rows.append(("entities without images", f"{kg.num_entities - with_images:,}"))
        rows.append(("image files", f"{sum(len(p) for p in kg.entity_images):,}"))
    for split in ("valid", "test"):
        entities, relations, triples = _unseen(kg, split)
        rows.append((f"{split} entities unseen in train", f"{entities:,}"))
        rows.append((f"{split} relations unseen in train", f"{relations:,}"))
        rows.append((f"{split} triples with an unseen entity/relation", f"{triples:,}"))
    for split in SPLITS:
        rows.append((f"duplicate triples in {split}", f"{_duplicates(kg.splits[split]):,}"))
    rows.append(
        ("test triples also in train", f"{_overlap(kg.splits['train'], kg.splits['test']):,}")
    )
    rows.append(
        ("valid triples also in train", f"{_overlap(kg.splits['train'], kg.splits['valid']):,}")
    )
    if kg.skipped:
        for what, count in sorted(kg.skipped.items()):
            rows.append((f"skipped: {what}", f"{count:,}"))
    else:
        rows.append(("skipped rows", "0"))
    return rows


def format_table(rows: Sequence[tuple[str, str]]) -> str:
    """Two aligned columns with a header rule, for terminals and Markdown alike."""
    width = max(len("statistic"), *(len(k) for k, _ in rows))
    value_width = max(len("value"), *(len(v) for _, v in rows))
    lines = [
        f"| {'statistic'.ljust(width)} | {'value'.rjust(value_width)} |",
        f"|{'-' * (width + 2)}|{'-' * (value_width + 1)}:|",
    ]
    lines += [f"| {k.ljust(width)} | {v.rjust(value_width)} |" for k, v in rows]
    return "\n".join(lines)

"""Readers of the on-disk dataset formats and format detection.

=========  ==========================================================================
format     recognised by
=========  ==========================================================================
ikrl       ``ikrl/entity2id.txt`` (or flat ``entity2id.txt`` without a count line)
openke     ``entity2id.txt`` whose first line is a count (MKG-W, MKG-Y, MMRNS)
hf         ``kgt5mm_graph.json`` written by :func:`kgt5mm.data.hf.export_hf`
generic    ``train.tsv`` (see :mod:`kgt5mm.data.formats.generic`)
=========  ==========================================================================
"""

from __future__ import annotations

from pathlib import Path

from kgt5mm.data.graph import KnowledgeGraph
from kgt5mm.errors import DatasetNotFoundError
from kgt5mm.typing import (
    DATASET_FORMATS,
    GENERIC_SPLIT_FILES,
    HF_MANIFEST,
    OPENKE_ENTITY2ID,
    DatasetFormat,
)

__all__ = ["detect_format", "load_folder"]


def detect_format(folder: str | Path) -> DatasetFormat:
    """Guess the format of a dataset folder from the files it holds.

    :raises DatasetNotFoundError: if no known layout matches
    """
    from kgt5mm.data.formats.ikrl import is_ikrl_folder

    folder = Path(folder)
    if (folder / HF_MANIFEST).is_file():
        return "hf"
    if is_ikrl_folder(folder):
        return "ikrl"
    if (folder / OPENKE_ENTITY2ID).is_file():
        return "openke"
    if (folder / GENERIC_SPLIT_FILES["train"]).is_file():
        return "generic"
    raise DatasetNotFoundError(
        f"{folder}: no known dataset layout (expected one of: ikrl/entity2id.txt (IKRL), "
        f"entity2id.txt with a count line (OpenKE), {GENERIC_SPLIT_FILES['train']} (generic), "
        f"{HF_MANIFEST} (kgt5mm Parquet export))"
    )


def load_folder(
    folder: str | Path, *, format: DatasetFormat, name: str | None = None, source: str | None = None
) -> KnowledgeGraph:
    """Load a dataset folder in the given format (``name`` defaults to the folder name, or
    for a Parquet export to the name stored in it)."""
    folder = Path(folder)
    if format == "hf":
        from kgt5mm.data.hf import from_hf_dataset

        return from_hf_dataset(folder, name=name)
    name = name or folder.name
    if format == "ikrl":
        from kgt5mm.data.formats.ikrl import load_ikrl

        return load_ikrl(folder, name=name, source=source)
    if format == "openke":
        from kgt5mm.data.formats.openke import load_openke

        return load_openke(folder, name=name, source=source)
    if format == "generic":
        from kgt5mm.data.formats.generic import load_generic

        return load_generic(folder, name=name, source=source)
    raise DatasetNotFoundError(
        f"unknown dataset format {format!r}; expected one of {DATASET_FORMATS}"
    )

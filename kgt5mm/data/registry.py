"""Named datasets and :func:`load_graph`, the one entry point for loading a knowledge graph.

::

    load_graph("wn9_img")                       # embedded in the package, no path needed
    load_graph("wn9_img_tiny")                  # small real subgraph of WN9-IMG (tests, demos)
    load_graph("mkg_w", data_dir="/data/kg")    # /data/kg/mkg_w/, or $KGT5MM_DATA_DIR/mkg_w/
    load_graph("/path/to/my_graph")             # any folder: IKRL, OpenKE, generic or HF export

The registry records, for every named dataset, its upstream sources and the sha256 of each
file, so a copy fetched elsewhere can be checked with :func:`verify_dataset`. Datasets whose
licence does not allow redistribution (MKG-W, MKG-Y: the ``ficha_*`` files state none) are not
embedded; without a local copy they raise :class:`~kgt5mm.errors.DatasetNotFoundError`, whose
message says how to point kgt5mm at one.
"""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np

from kgt5mm.data.graph import KnowledgeGraph
from kgt5mm.errors import DatasetNotFoundError, KGT5MMError
from kgt5mm.typing import DATA_DIR_ENV, DatasetFormat

__all__ = [
    "DatasetSpec",
    "DATASETS",
    "embedded_path",
    "load_graph",
    "resolve_dataset",
    "tiny_entities",
    "verify_dataset",
    "TINY_SEEDS",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DatasetSpec:
    """What the registry knows about a named dataset.

    :ivar name: registry key (``load_graph(name)``)
    :ivar format: on-disk format (``"ikrl"`` or ``"openke"``)
    :ivar folder: sub-folder name inside a data directory
    :ivar embedded: shipped inside the package (no data directory needed)
    :ivar counts: ``(entities, relations, train, valid, test)`` of the published split
    :ivar sources: upstream origin of the files (repository and path)
    :ivar license: licence of the files
    :ivar sha256: file path relative to the dataset folder -> sha256 hex digest
    """

    name: str
    format: DatasetFormat
    folder: str
    embedded: bool
    description: str
    counts: tuple[int, int, int, int, int]
    sources: tuple[str, ...]
    license: str
    sha256: dict[str, str] = field(default_factory=dict)


DATASETS: dict[str, DatasetSpec] = {
    "wn9_img": DatasetSpec(
        name="wn9_img",
        format="ikrl",
        folder="wn9_img",
        embedded=True,
        description="WN9-IMG (IKRL, IJCAI 2017): WordNet subset with names, definitions, "
        "11 sample photos",
        counts=(6555, 9, 11741, 1337, 1319),
        sources=(
            "https://github.com/thunlp/IKRL data.rar (WN9-IMG split; MIT)",
            "https://github.com/yao8839836/kg-bert data/WN18/entity2text.txt, relation2text.txt "
            "(Apache-2.0)",
            "scikit-image 0.26.0, matplotlib 3.11.2, scikit-learn 1.9.1 wheels (sample photos; "
            "see sample_images/MANIFEST.tsv)",
        ),
        license="MIT (IKRL split), Apache-2.0 (kg-bert text); photos: see MANIFEST.tsv",
        sha256={
            "ikrl/entity2id.txt": "9baf3c1d58fe1bfd97ad7e57da042a037806864be62b900274bbdd6130dc17d0",
            "ikrl/relation2id.txt": "bb7fcfe38bad2881780a337d29f734c9449590b0a8e892a422c0ba3375dfbde3",
            "ikrl/train.txt": "45a9512aa7f2b90063eaa9d5165af1886d04cea0b2743ceeb76542a83e5e8201",
            "ikrl/valid.txt": "b01bc7cf0bb80d58dfa59d71394b0e89a06b58c4539a43c261e944f761d9dd08",
            "ikrl/test.txt": "99b99adf2be1777cbf90588e98ce61ae78341db0cf02a2c78d2356efc385e2f8",
            "wn9_entity2text.tsv": "4183850ba74266772be3df6c2428a54ceb1fa2978ea7959cf9b9bcb55ce509ed",
            "wn18_relation2text.txt": "25b43c9140c9c21815010e08ad36bbdaa034e7853c92f00ff65d314759b1f4c7",
            "sample_images/MANIFEST.tsv": "8f210ffc1857a94f4496f3534adf45ed2ccf3faeafb1a4b4b650c6e5a7768173",
        },
    ),
    "mkg_w": DatasetSpec(
        name="mkg_w",
        format="openke",
        folder="mkg_w",
        embedded=False,
        description="MKG-W (MMRNS, ACM MM 2022; Wikidata) with names, types, relation "
        "templates and VLM-written entity descriptions",
        counts=(15000, 169, 34196, 4276, 4274),
        sources=(
            "https://github.com/zjukg/MyGO data/MKG-W/{train,valid,test}.txt (MMRNS split)",
            "https://github.com/zjukg/NATIVE entity2id.txt, relation2id.txt (MKG-W)",
            "https://github.com/mhd0528/LLM_MMKC-pub ficha_* files (no licence stated)",
        ),
        license="split: see zjukg/MyGO; ficha_* files: no licence stated (not redistributed)",
        sha256={
            "entity2id.txt": "d94b546efcb535d8253821626dd32f3ee876b2f263b727a4a446bc74697785df",
            "relation2id.txt": "204203e03a92d4f973ee815449695bcfaae1b6917fcb08b65f3b0fb071a47f61",
            "train.txt": "3f1eb0fd545094ec40e2028228f3d0da0ef75779e0e17ccfae2ada3ee5f8b869",
            "valid.txt": "c1fc188a6c48867593f3fc4844b775459b7d5dfb61e048e6cf12e4f4c2b1cb37",
            "test.txt": "d93f66cf5411e18e9e9e7e2f82d601c3d79d4e9b0f184c832e4988ebaeb50472",
            "ficha_entity_mentions.del": "20a91c94b030cd2a49e91dd7f80fd63d3ec4579be52e2ac02c45daaff26a62c2",
            "ficha_entity_types.del": "0ff80379a75b51762954431c93ce3c04e0350e86b4e9ca6ba4e3cea9e04749f9",
            "ficha_relation_mentions.del": "fde12190f533ce170974f44939400ebe8327dac3eb0081a2a1387f1b382673ae",
            "ficha_relation_templates.txt": "dc0074f3075d36d742fcc196250f1da4d65869172dea0855088fee33f7f104da",
            "ficha_vlm_desc_setting3.txt": "456906cadf895710a165d5c2fa83e2f8b6447e727f6173f3882c524b554955ef",
        },
    ),
    "mkg_y": DatasetSpec(
        name="mkg_y",
        format="openke",
        folder="mkg_y",
        embedded=False,
        description="MKG-Y (MMRNS, ACM MM 2022; YAGO) with names, relation templates and "
        "VLM-written entity descriptions",
        counts=(15000, 28, 21310, 2665, 2663),
        sources=(
            "https://github.com/zjukg/MyGO data/MKG-Y/{train,valid,test}.txt (MMRNS split)",
            "https://github.com/zjukg/NATIVE entity2id.txt, relation2id.txt (MKG-Y)",
            "https://github.com/mhd0528/LLM_MMKC-pub ficha_* files (no licence stated)",
        ),
        license="split: see zjukg/MyGO; ficha_* files: no licence stated (not redistributed)",
        sha256={
            "entity2id.txt": "416f6f77c13d0cf0c5cae9625a62b9f7d26320c27ae408f5ce4e7eae3206b8d9",
            "relation2id.txt": "78d468edc02688f742c9b5a1030a071789ab24784dd2e48897643fe108ff4e4d",
            "train.txt": "491857a4540068ef4d9d46f3d46d3e0295fa3564d4c1400baa13ef369bd41bd1",
            "valid.txt": "5bb9a00202a8402bad97c3a2abe9cc57bd5092d08122cd9c6e163e3bb6fac693",
            "test.txt": "dfb140b10f92370efb2ef2ca556bc38c966dd39ea0adc415c74d10690e01fd8b",
            "ficha_entity_mentions.del": "7463a1de4fd60de38bcce9e806e6e2b60cc325556224e558461e5c445d0d764e",
            "ficha_relation_mentions.del": "1ccebce6d33ff9dcf2f888bbe9808c4c40f55812ee1871c4c399a63f2e1e3bf1",
            "ficha_relation_templates.txt": "64cba9a742fd24e58d34710fe1ef0c4f6ccee045d96bac9ab55eb343b2c81b10",
            "ficha_vlm_desc_setting3.txt": "991de8e42bd834af2afd4b289b93d80b64f027f807b4291b6ce87155c0676a9c",
        },
    ),
}

#: Derived datasets: name -> (parent, builder description).
TINY_NAME = "wn9_img_tiny"
#: The WN9-IMG entities with embedded sample photos; the tiny subgraph is grown from them.
TINY_SEEDS: tuple[str, ...] = (
    "n02121808",
    "n02374451",
    "n02942699",
    "n03063073",
    "n03790512",
    "n04099429",
    "n04460130",
    "n09818022",
    "n09951070",
    "n11669921",
    "n12102133",
)
#: Most train neighbours taken per seed (lowest entity index first) for the tiny subgraph.
TINY_NEIGHBOURS_PER_SEED = 40


def embedded_path(name: str) -> Path:
    """Folder of an embedded dataset inside the installed package."""
    root = resources.files("kgt5mm.data") / "embedded" / name
    return Path(str(root))


def _data_dirs(data_dir: str | Path | None) -> list[Path]:
    dirs = []
    if data_dir is not None:
        dirs.append(Path(data_dir))
    env = os.environ.get(DATA_DIR_ENV)
    if env:
        dirs.append(Path(env))
    return dirs


def resolve_dataset(
    name_or_path: str | Path, *, data_dir: str | Path | None = None
) -> tuple[Path, DatasetSpec | None]:
    """Folder holding a dataset given its registry name or a path.

    :raises DatasetNotFoundError: when a registered dataset is in no data directory, or when
        the argument is neither a registered name nor an existing folder
    """
    key = str(name_or_path)
    spec = DATASETS.get(key)
    if spec is not None:
        if spec.embedded and data_dir is None:
            return embedded_path(spec.folder), spec
        for root in _data_dirs(data_dir):
            for candidate in (root / spec.folder, root):
                if candidate.name == spec.folder and candidate.is_dir():
                    return candidate, spec
        if spec.embedded:
            return embedded_path(spec.folder), spec
        searched = ", ".join(str(d / spec.folder) for d in _data_dirs(data_dir))
        where = (
            f"searched: {searched}"
            if searched
            else f"no data directory given and {DATA_DIR_ENV} is unset"
        )
        raise DatasetNotFoundError(
            f"dataset {key!r} is not embedded in kgt5mm (its files may not be redistributed) "
            f"and was not found ({where}). Put a copy of its files in a folder "
            f"named {spec.folder!r} and pass its parent directory: "
            f"load_graph({key!r}, data_dir=...), `--data-dir DIR`, or set {DATA_DIR_ENV}=DIR; "
            f"or pass the folder path itself. Upstream sources: {'; '.join(spec.sources)}. "
            f"Check a copy with `kgt5mm data check {key} --data-dir DIR --verify`."
        )
    path = Path(name_or_path).expanduser()
    if path.is_dir():
        return path, None
    known = ", ".join(sorted([*DATASETS, TINY_NAME]))
    raise DatasetNotFoundError(
        f"{key!r} is neither a registered dataset ({known}) nor an existing folder"
    )


def verify_dataset(name: str, folder: str | Path) -> dict[str, bool]:
    """Compare the files in ``folder`` with the registry's sha256 digests.

    :returns: relative path -> whether its digest matches (missing files give ``False``)
    """
    spec = DATASETS[name]
    result = {}
    for relative, expected in spec.sha256.items():
        path = Path(folder) / relative
        if not path.is_file():
            result[relative] = False
            continue
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        result[relative] = digest == expected
    return result


def tiny_entities(kg: KnowledgeGraph) -> np.ndarray:
    """Entities of the tiny WN9-IMG subgraph, deterministic.

    The 11 sample-photo entities (seeds) plus, per seed, its first
    :data:`TINY_NEIGHBOURS_PER_SEED` distinct train neighbours by entity index, plus every
    entity that is a train neighbour of at least two chosen entities (closing triangles so
    that valid/test triples survive). Every chosen entity has a train edge inside the set.
    """
    index = kg.neighbours
    seeds = [kg.entity_index_by_id(s) for s in TINY_SEEDS]
    chosen: set[int] = set(seeds)
    for seed in seeds:
        _, neighbours, _ = index.of(seed)
        for n in sorted(set(neighbours.tolist()))[:TINY_NEIGHBOURS_PER_SEED]:
            chosen.add(n)
    first = sorted(chosen)
    hits: dict[int, int] = {}
    for entity in first:
        _, neighbours, _ = index.of(entity)
        for n in set(neighbours.tolist()) - chosen:
            hits[n] = hits.get(n, 0) + 1
    chosen.update(n for n, count in hits.items() if count >= 2)
    return np.asarray(sorted(chosen), dtype=np.int64)


def _build_tiny(full: KnowledgeGraph) -> KnowledgeGraph:
    sub = full.subgraph(tiny_entities(full), name=TINY_NAME)
    seen = np.zeros(sub.num_entities, dtype=bool)
    train = sub.splits["train"]
    seen[train[:, 0]] = True
    seen[train[:, 2]] = True
    if not seen.all():  # pragma: no cover - guaranteed by construction
        raise KGT5MMError(f"{TINY_NAME}: {int((~seen).sum())} entities have no train triple")
    return sub


def load_graph(
    name_or_path: str | Path,
    *,
    data_dir: str | Path | None = None,
    format: DatasetFormat | None = None,
    name: str | None = None,
) -> KnowledgeGraph:
    """Load a knowledge graph by registry name or from a folder.

    :param name_or_path: ``"wn9_img"`` (embedded), ``"wn9_img_tiny"`` (embedded subgraph),
        ``"mkg_w"``/``"mkg_y"`` (from a data directory), or a dataset folder in any supported
        format (IKRL, OpenKE with ``ficha_*`` files, the generic TSV format, or a folder written
        by :func:`kgt5mm.data.hf.export_hf`)
    :param data_dir: folder that holds named datasets as sub-folders (default: the environment
        variable ``KGT5MM_DATA_DIR``)
    :param format: force a format instead of detecting it from the folder's files
    :param name: name of the graph (default: the registry name or the folder name)
    :raises DatasetNotFoundError: dataset unknown or not present locally (message says how to
        point at a local copy)
    :raises DataFormatError: a file is malformed (file, line and value in the message)
    """
    from kgt5mm.data.formats import detect_format, load_folder

    if str(name_or_path) == TINY_NAME:
        return _build_tiny(load_graph("wn9_img", data_dir=None))
    folder, spec = resolve_dataset(name_or_path, data_dir=data_dir)
    fmt = format or (spec.format if spec is not None else detect_format(folder))
    graph_name = name or (spec.name if spec is not None else None)
    source = "embedded" if spec is not None and spec.embedded and data_dir is None else str(folder)
    kg = load_folder(folder, format=fmt, name=graph_name, source=source)
    logger.info("loaded %r", kg)
    return kg

"""Shared vocabularies and constants of kgt5mm (split names, sides, file names, env vars).

Everything that would otherwise be a string literal scattered through the code lives here, as
``Literal`` types for annotations and tuples/constants for run-time checks::

    from kgt5mm.typing import SPLITS, Split
    for split in SPLITS:
        ...
"""

from __future__ import annotations

from typing import Literal

__all__ = [
    "Split",
    "SPLITS",
    "Side",
    "SIDES",
    "RankType",
    "RANK_TYPES",
    "DatasetFormat",
    "DATASET_FORMATS",
    "DATA_DIR_ENV",
    "IKRL_DIR",
    "IKRL_SPLIT_FILES",
    "IKRL_ENTITY2ID",
    "IKRL_RELATION2ID",
    "WN9_ENTITY_TEXT",
    "WN18_RELATION_TEXT",
    "SAMPLE_IMAGES_DIR",
    "SAMPLE_IMAGES_MANIFEST",
    "OPENKE_SPLIT_FILES",
    "OPENKE_ENTITY2ID",
    "OPENKE_RELATION2ID",
    "FICHA_ENTITY_MENTIONS",
    "FICHA_ENTITY_TYPES",
    "FICHA_RELATION_MENTIONS",
    "FICHA_RELATION_TEMPLATES",
    "FICHA_VLM_DESC",
    "GENERIC_SPLIT_FILES",
    "GENERIC_ENTITY_TEXT",
    "GENERIC_RELATION_TEXT",
    "GENERIC_IMAGES_DIR",
    "GENERIC_IMAGE_LIST",
    "HF_TRIPLES_CONFIG",
    "HF_ENTITIES_CONFIG",
    "HF_RELATIONS_CONFIG",
    "HF_MANIFEST",
    "IMAGE_EXTENSIONS",
    "TEMPLATE_QUERY",
    "TEMPLATE_ANSWER",
    "INVERSE_PREFIX",
]

#: A dataset split.
Split = Literal["train", "valid", "test"]
#: The splits of every knowledge graph, in canonical order.
SPLITS: tuple[Split, ...] = ("train", "valid", "test")

#: Which end of a triple a query predicts: "tail" (q < R), "head" (q >= R) or both together.
Side = Literal["head", "tail", "both"]
SIDES: tuple[Side, ...] = ("head", "tail", "both")

#: How ties are broken when ranking (PyKEEN's three rank types).
RankType = Literal["optimistic", "realistic", "pessimistic"]
RANK_TYPES: tuple[RankType, ...] = ("optimistic", "realistic", "pessimistic")

#: On-disk dataset formats understood by :func:`kgt5mm.data.load_graph`.
DatasetFormat = Literal["ikrl", "openke", "generic", "hf"]
DATASET_FORMATS: tuple[DatasetFormat, ...] = ("ikrl", "openke", "generic", "hf")

#: Environment variable naming the folder that holds named datasets (``mkg_w/``, ``mkg_y/``).
DATA_DIR_ENV = "KGT5MM_DATA_DIR"

# --- IKRL (WN9-IMG) layout -----------------------------------------------------------------
#: Sub-folder of a WN9-IMG dataset folder that holds the IKRL files.
IKRL_DIR = "ikrl"
#: split -> file name; lines are ``head<TAB>tail<TAB>relation`` (tail before relation), CRLF.
IKRL_SPLIT_FILES: dict[Split, str] = {
    "train": "train.txt",
    "valid": "valid.txt",
    "test": "test.txt",
}
IKRL_ENTITY2ID = "entity2id.txt"  # ``entity<TAB>index``
IKRL_RELATION2ID = "relation2id.txt"  # ``relation<TAB>index``
WN9_ENTITY_TEXT = "wn9_entity2text.tsv"  # ``offset<TAB>name, definition`` (offset without "n")
WN18_RELATION_TEXT = "wn18_relation2text.txt"  # ``_relation<TAB>readable name``
SAMPLE_IMAGES_DIR = "sample_images"
SAMPLE_IMAGES_MANIFEST = "MANIFEST.tsv"

# --- OpenKE / MMRNS (MKG-W, MKG-Y) layout --------------------------------------------------
#: split -> file name; lines are ``head<TAB>relation<TAB>tail`` (integers).
OPENKE_SPLIT_FILES: dict[Split, str] = {
    "train": "train.txt",
    "valid": "valid.txt",
    "test": "test.txt",
}
OPENKE_ENTITY2ID = "entity2id.txt"  # first line count, then ``uri<SPACE|TAB>index``
OPENKE_RELATION2ID = "relation2id.txt"
FICHA_ENTITY_MENTIONS = "ficha_entity_mentions.del"  # ``index<TAB>name_with_underscores``
FICHA_ENTITY_TYPES = "ficha_entity_types.del"  # ``index<TAB>type`` (MKG-W only)
FICHA_RELATION_MENTIONS = "ficha_relation_mentions.del"  # ``index<TAB>relation_name``
FICHA_RELATION_TEMPLATES = "ficha_relation_templates.txt"  # count, ``index<TAB>Template: ...``
FICHA_VLM_DESC = "ficha_vlm_desc_setting3.txt"  # count, ``index<TAB> text``

# --- generic user format ------------------------------------------------------------------
#: split -> file name; lines are ``head<TAB>relation<TAB>tail`` (names or ids).
GENERIC_SPLIT_FILES: dict[Split, str] = {
    "train": "train.tsv",
    "valid": "valid.tsv",
    "test": "test.tsv",
}
GENERIC_ENTITY_TEXT = "entities.tsv"  # ``id<TAB>name[<TAB>description[<TAB>vlm_text]]``
GENERIC_RELATION_TEXT = "relations.tsv"  # ``id<TAB>text[<TAB>inverse_text]``
GENERIC_IMAGES_DIR = "images"  # files named ``<entity_id>[_anything].<ext>``
GENERIC_IMAGE_LIST = "images.tsv"  # ``entity_id<TAB>path`` (relative to the dataset folder)

# --- Hugging Face datasets export ---------------------------------------------------------
HF_TRIPLES_CONFIG = "triples"
HF_ENTITIES_CONFIG = "entities"
HF_RELATIONS_CONFIG = "relations"
HF_MANIFEST = "kgt5mm_graph.json"

#: File extensions recognised as images (lower case, with dot).
IMAGE_EXTENSIONS: tuple[str, ...] = (
    ".jpg",
    ".jpeg",
    ".png",
    ".gif",
    ".bmp",
    ".webp",
    ".tif",
    ".tiff",
)

#: Placeholders of relation templates: the query entity and the answer entity.
TEMPLATE_QUERY = "[A]"
TEMPLATE_ANSWER = "[B]"
#: Prefix of the generated wording of an inverse relation without a template of its own.
INVERSE_PREFIX = "reverse of "

"""kgt5mm: multimodal knowledge graph completion as sequence-to-sequence generation.

The stages, each in its own subpackage::

    kgt5mm.data        KG files -> KnowledgeGraph (ids, splits, names, text, images, indexes)
    kgt5mm.vision      entity images -> cached link-aware VLM text (kgt5mm caption)
    kgt5mm.context     (h, r, ?) -> one source string within a token budget
    kgt5mm.modeling    SentencePiece tokenizer, T5 model (scratch / pretrained / LoRA)
    kgt5mm.training    the Accelerate training loop behind train.py
    kgt5mm.decoding    entity-name trie and constrained beam search
    kgt5mm.evaluation  filtered ranks (optimistic / realistic / pessimistic) and metrics
    kgt5mm.hub         save_pretrained / from_pretrained / push_to_hub and prediction

Heavy submodules are imported lazily, so ``import kgt5mm`` is cheap.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

#: public name -> module that defines it (resolved on first access)
_LAZY: dict[str, str] = {
    "KnowledgeGraph": "kgt5mm.data",
    "load_graph": "kgt5mm.data",
    "ContextBuilder": "kgt5mm.context",
    "Config": "kgt5mm.config",
    "train": "kgt5mm.training",
    "evaluate": "kgt5mm.evaluation",
    "KGT5MMModel": "kgt5mm.hub",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'kgt5mm' has no attribute {name!r}")

"""Entity images -> cached VLM text (the ``kgt5mm caption`` stage).

* :mod:`kgt5mm.vision.images`: safe image loading and side-by-side composition.
* :mod:`kgt5mm.vision.vlm`: :class:`VLM`, any transformers image-text-to-text model (Yes/No
  probability and greedy generation, batched; bf16 on GPU).
* :mod:`kgt5mm.vision.captioner`: relevance filter, entity descriptions and link-aware
  captions into an append-only JSONL cache, resumable, sharded across Accelerate processes.
* :mod:`kgt5mm.vision.tiny`: a tiny random BLIP-2 / InstructBLIP built offline (tests, demos).

Importing this package does not import torch or transformers; the heavy parts load on use.
"""

from kgt5mm.vision.captioner import CaptionConfig, CaptionSummary, run_captioning
from kgt5mm.vision.images import ImageLoadError, compose_side_by_side, load_image

__all__ = [
    "CaptionConfig",
    "CaptionSummary",
    "ImageLoadError",
    "compose_side_by_side",
    "load_image",
    "run_captioning",
]

"""Multimodal context: versioned prompts, the caption cache/store and the context builder.

::

    from kgt5mm.context import ContextBuilder, ContextConfig, SPECIAL_TOKENS, load_prompt
    builder = ContextBuilder(kg, ContextConfig(budget_tokens=128), count_tokens=None)
    source = builder.build(entity, query_relation, exclude_edge=train_row, epoch=0)

Nothing here imports torch or transformers.
"""

from kgt5mm.context.builder import (
    BuiltContext,
    ContextBuilder,
    relation_relevance,
    whitespace_count,
)
from kgt5mm.context.captions import (
    CaptionRecord,
    CaptionStore,
    append_records,
    load_caption_file,
    load_vlm_desc_file,
    read_cache,
    repair_cache,
)
from kgt5mm.context.config import SPECIAL_TOKENS, ContextConfig
from kgt5mm.context.prompts import Prompt, list_prompts, load_prompt

__all__ = [
    "BuiltContext",
    "CaptionRecord",
    "CaptionStore",
    "ContextBuilder",
    "ContextConfig",
    "Prompt",
    "SPECIAL_TOKENS",
    "append_records",
    "list_prompts",
    "load_caption_file",
    "load_prompt",
    "load_vlm_desc_file",
    "read_cache",
    "relation_relevance",
    "repair_cache",
    "whitespace_count",
]

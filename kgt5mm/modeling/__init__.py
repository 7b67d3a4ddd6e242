"""Tokenizer and model: SentencePiece fitted to the graph's text, T5 from scratch or pretrained.

::

    from kgt5mm.modeling import (TokenizerConfig, ModelConfig, train_tokenizer, load_tokenizer,
                                 encode_targets, build_model)
    tokenizer = train_tokenizer(kg, config=TokenizerConfig(vocab_size=8000), output_dir="tok")
    labels = encode_targets(tokenizer, kg.entity_names)      # E lists: name ids + [eos]
    model = build_model(ModelConfig(size="tiny"), tokenizer=tokenizer)
"""

from kgt5mm.modeling.config import MODEL_SIZES, LoraConfig, ModelConfig, TokenizerConfig
from kgt5mm.modeling.model import (
    build_model,
    count_parameters,
    is_peft_model,
    save_model,
    unwrap_peft,
)
from kgt5mm.modeling.tokenizer import (
    EOS_ID,
    PAD_ID,
    SPIECE_FILE,
    UNK_ID,
    encode_targets,
    load_tokenizer,
    token_counter,
    tokenizer_corpus,
    tokenizer_from_spiece,
    train_tokenizer,
)

__all__ = [
    "MODEL_SIZES",
    "LoraConfig",
    "ModelConfig",
    "TokenizerConfig",
    "build_model",
    "count_parameters",
    "is_peft_model",
    "save_model",
    "unwrap_peft",
    "EOS_ID",
    "PAD_ID",
    "SPIECE_FILE",
    "UNK_ID",
    "encode_targets",
    "load_tokenizer",
    "tokenizer_corpus",
    "token_counter",
    "tokenizer_from_spiece",
    "train_tokenizer",
]

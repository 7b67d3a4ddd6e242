"""Build the T5-class seq2seq model: a named shape from scratch, a checkpoint, optional LoRA.

::

    from kgt5mm.modeling import ModelConfig, build_model
    model = build_model(ModelConfig(size="cpu"), tokenizer=tokenizer)           # from scratch
    model = build_model(ModelConfig(pretrained="google-t5/t5-small"), tokenizer=tokenizer)
    model = build_model(ModelConfig(pretrained="ckpt/", lora=LoraConfig(enabled=True)),
                        tokenizer=tokenizer)                                     # PEFT LoRA
    save_model(model, "out/", merge_lora=False)   # adapters alone (or merged weights)

The vocabulary size is the tokenizer's size; ``pad`` is the decoder start token as in T5.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from kgt5mm.errors import KGT5MMError
from kgt5mm.modeling.config import ModelConfig

if TYPE_CHECKING:  # pragma: no cover
    import torch
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

__all__ = ["build_model", "is_peft_model", "unwrap_peft", "save_model", "count_parameters"]

logger = logging.getLogger(__name__)


def _vocab_size(tokenizer: PreTrainedTokenizerBase) -> int:
    return len(tokenizer)


def _scratch_model(config: ModelConfig, tokenizer: PreTrainedTokenizerBase) -> PreTrainedModel:
    from transformers import T5Config, T5ForConditionalGeneration

    shape = config.shape()
    t5_config = T5Config(
        vocab_size=_vocab_size(tokenizer),
        **shape,
        feed_forward_proj=config.feed_forward_proj,
        dropout_rate=config.dropout_rate,
        tie_word_embeddings=config.tie_word_embeddings,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        decoder_start_token_id=tokenizer.pad_token_id,
    )
    return T5ForConditionalGeneration(t5_config)


def _pretrained_model(config: ModelConfig, tokenizer: PreTrainedTokenizerBase) -> PreTrainedModel:
    from transformers import AutoModelForSeq2SeqLM

    try:
        model = AutoModelForSeq2SeqLM.from_pretrained(config.pretrained)
    except (OSError, ValueError) as error:
        raise KGT5MMError(
            f"cannot load a seq2seq checkpoint from {config.pretrained!r}: {error}"
        ) from error
    vocab = _vocab_size(tokenizer)
    if model.get_input_embeddings().num_embeddings < vocab:
        logger.info(
            "resizing the embeddings of %s to the tokenizer's %d tokens", config.pretrained, vocab
        )
        model.resize_token_embeddings(vocab)
    if model.config.decoder_start_token_id is None:
        model.config.decoder_start_token_id = tokenizer.pad_token_id
    return model


def _add_lora(model: PreTrainedModel, config: ModelConfig) -> PreTrainedModel:
    from peft import LoraConfig as PeftLoraConfig
    from peft import TaskType, get_peft_model

    lora = config.lora
    names = {name.rsplit(".", 1)[-1] for name, _ in model.named_modules()}
    missing = [m for m in lora.target_modules if m not in names]
    if missing:
        raise KGT5MMError(
            f"model.lora.target_modules {missing} are not modules of {config.pretrained!r}"
        )
    peft_config = PeftLoraConfig(
        task_type=TaskType.SEQ_2_SEQ_LM,
        r=lora.r,
        lora_alpha=lora.alpha,
        lora_dropout=lora.dropout,
        target_modules=list(lora.target_modules),
        modules_to_save=list(lora.modules_to_save) or None,
    )
    return get_peft_model(model, peft_config)


def build_model(config: ModelConfig, *, tokenizer: PreTrainedTokenizerBase) -> torch.nn.Module:
    """Build the model described by ``config`` for ``tokenizer``'s vocabulary.

    :param config: named shape or pretrained checkpoint, dropout, LoRA settings
    :param tokenizer: gives the vocabulary size and the pad / eos / decoder start ids
    :return: a ``T5ForConditionalGeneration`` (or other seq2seq LM for a checkpoint), wrapped
        in a ``peft.PeftModel`` when ``config.lora.enabled``
    """
    config.validate()
    model = (
        _scratch_model(config, tokenizer)
        if config.pretrained is None
        else _pretrained_model(config, tokenizer)
    )
    if config.gradient_checkpointing:
        model.gradient_checkpointing_enable()
        model.config.use_cache = False
    if config.lora.enabled:
        model = _add_lora(model, config)
    trainable, total = count_parameters(model)
    logger.info(
        "model: %s, %.2fM parameters (%.2fM trainable)",
        config.pretrained or f"T5 '{config.size}' from scratch",
        total / 1e6,
        trainable / 1e6,
    )
    return model


def count_parameters(model: torch.nn.Module) -> tuple[int, int]:
    """``(trainable, total)`` parameter counts (tied weights counted once)."""
    seen: set[int] = set()
    trainable = total = 0
    for parameter in model.parameters():
        if id(parameter) in seen:
            continue
        seen.add(id(parameter))
        total += parameter.numel()
        trainable += parameter.numel() if parameter.requires_grad else 0
    return trainable, total


def is_peft_model(model: object) -> bool:
    """Whether ``model`` is a PEFT wrapper (LoRA adapters)."""
    try:
        from peft import PeftModel
    except ImportError:  # pragma: no cover
        return False
    return isinstance(model, PeftModel)


def unwrap_peft(model: torch.nn.Module, *, merge: bool) -> torch.nn.Module:
    """The plain transformers model: LoRA merged into a copy of the weights, or the base model.

    With ``merge=False`` a PEFT model is returned unchanged (its ``save_pretrained`` writes the
    adapters alone); a non-PEFT model is always returned unchanged.
    """
    if not is_peft_model(model) or not merge:
        return model
    import copy

    return copy.deepcopy(model).merge_and_unload()


def save_model(model: torch.nn.Module, output_dir: str | Path, *, merge_lora: bool = False) -> Path:
    """Save the model's weights and config to ``output_dir`` (adapters alone or merged for LoRA)."""
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    unwrap_peft(model, merge=merge_lora).save_pretrained(str(output_dir))
    return output_dir

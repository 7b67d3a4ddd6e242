"""Configuration dataclasses of the tokenizer and the model (sections ``tokenizer`` and ``model``).

They live here rather than in :mod:`kgt5mm.config` so that :mod:`kgt5mm.modeling` can be used
without the training configuration; :class:`kgt5mm.config.Config` composes them. Every field has
a default and a ``help`` text (shown by ``kgt5mm train --help-config``); ``validate()`` raises
:class:`~kgt5mm.errors.ConfigError` naming the field and the offending value.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from kgt5mm.errors import ConfigError

__all__ = ["TokenizerConfig", "LoraConfig", "ModelConfig", "MODEL_SIZES"]


def _help(text: str) -> dict[str, Any]:
    return {"help": text}


#: Named T5 shapes for models trained from scratch. "tiny" is for tests and quick CPU demos,
#: "cpu" is the ~9M-parameter calibration shape of DESIGN.md (with an 8k vocabulary),
#: "small" and "base" are the t5-small and t5-base shapes.
MODEL_SIZES: dict[str, dict[str, int]] = {
    "tiny": {
        "d_model": 64,
        "d_ff": 256,
        "num_layers": 2,
        "num_decoder_layers": 2,
        "num_heads": 4,
        "d_kv": 16,
    },
    "mini": {
        "d_model": 128,
        "d_ff": 512,
        "num_layers": 3,
        "num_decoder_layers": 3,
        "num_heads": 4,
        "d_kv": 32,
    },
    "cpu": {
        "d_model": 256,
        "d_ff": 1024,
        "num_layers": 4,
        "num_decoder_layers": 4,
        "num_heads": 4,
        "d_kv": 64,
    },
    "small": {
        "d_model": 512,
        "d_ff": 2048,
        "num_layers": 6,
        "num_decoder_layers": 6,
        "num_heads": 8,
        "d_kv": 64,
    },
    "base": {
        "d_model": 768,
        "d_ff": 3072,
        "num_layers": 12,
        "num_decoder_layers": 12,
        "num_heads": 12,
        "d_kv": 64,
    },
}


@dataclass
class TokenizerConfig:
    """How the SentencePiece tokenizer is trained on the graph's text (or which one is loaded)."""

    pretrained: str | None = field(
        default=None,
        metadata=_help(
            "folder or Hub id of an existing tokenizer (e.g. the pretrained checkpoint's); "
            "None trains a SentencePiece model on the graph's text"
        ),
    )
    vocab_size: int = field(
        default=8000,
        metadata=_help(
            "SentencePiece vocabulary size (a soft limit: small graphs get fewer pieces)"
        ),
    )
    model_type: str = field(
        default="unigram",
        metadata=_help(
            "SentencePiece model type; only unigram converts exactly to the fast tokenizer "
            "used for training and decoding"
        ),
    )
    character_coverage: float = field(
        default=0.9995,
        metadata=_help(
            "share of characters covered by pieces; the rest falls back to UTF-8 byte pieces"
        ),
    )
    use_descriptions: bool = field(
        default=True,
        metadata=_help("train on entity descriptions as well as names and relation texts"),
    )
    use_vlm_text: bool = field(default=True, metadata=_help("train on the VLM-written entity text"))
    max_sentences: int = field(
        default=1_000_000,
        metadata=_help("upper bound on training sentences (SentencePiece samples this many)"),
    )
    seed: int = field(default=0, metadata=_help("seed of the SentencePiece sentence sampling"))

    def validate(self, prefix: str = "tokenizer") -> None:
        """Raise :class:`ConfigError` on the first invalid field."""
        if self.model_type != "unigram":
            raise ConfigError(
                f"{prefix}.model_type must be 'unigram' (only unigram SentencePiece models "
                f"convert exactly to a fast tokenizer), got {self.model_type!r}"
            )
        if not isinstance(self.vocab_size, int) or self.vocab_size < 300:
            raise ConfigError(
                f"{prefix}.vocab_size must be an integer >= 300 (256 byte pieces + specials), "
                f"got {self.vocab_size!r}"
            )
        if not 0.9 <= float(self.character_coverage) <= 1.0:
            raise ConfigError(
                f"{prefix}.character_coverage must be in [0.9, 1.0], got {self.character_coverage!r}"
            )
        if self.max_sentences < 1:
            raise ConfigError(f"{prefix}.max_sentences must be >= 1, got {self.max_sentences!r}")


@dataclass
class LoraConfig:
    """LoRA adapters through PEFT (only with a pretrained checkpoint)."""

    enabled: bool = field(
        default=False, metadata=_help("train LoRA adapters instead of all weights")
    )
    r: int = field(default=8, metadata=_help("rank of the adapter matrices"))
    alpha: int = field(default=16, metadata=_help("LoRA scaling numerator (scale = alpha / r)"))
    dropout: float = field(default=0.05, metadata=_help("dropout on the adapter input"))
    target_modules: list[str] = field(
        default_factory=lambda: ["q", "v"],
        metadata=_help(
            "names of the linear layers that get adapters (T5: q, k, v, o, wi, wo, wi_0, wi_1)"
        ),
    )
    modules_to_save: list[str] = field(
        default_factory=list,
        metadata=_help(
            "modules trained and saved in full next to the adapters (e.g. shared, lm_head)"
        ),
    )
    merge_on_save: bool = field(
        default=False,
        metadata=_help(
            "save the final model with the adapters merged into the weights (else adapters alone)"
        ),
    )

    def validate(self, prefix: str = "model.lora") -> None:
        """Raise :class:`ConfigError` on the first invalid field."""
        if self.r < 1:
            raise ConfigError(f"{prefix}.r must be >= 1, got {self.r!r}")
        if self.alpha <= 0:
            raise ConfigError(f"{prefix}.alpha must be > 0, got {self.alpha!r}")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"{prefix}.dropout must be in [0, 1), got {self.dropout!r}")
        if not self.target_modules:
            raise ConfigError(
                f"{prefix}.target_modules must name at least one module, got {self.target_modules!r}"
            )


@dataclass
class ModelConfig:
    """The T5-class encoder-decoder: a named shape trained from scratch, or a checkpoint."""

    size: str = field(
        default="cpu",
        metadata=_help(f"named shape for training from scratch: {', '.join(MODEL_SIZES)}"),
    )
    pretrained: str | None = field(
        default=None,
        metadata=_help(
            "folder or Hub id of a pretrained seq2seq checkpoint (e.g. google-t5/t5-small); "
            "overrides size"
        ),
    )
    d_model: int | None = field(default=None, metadata=_help("override the shape's hidden size"))
    d_ff: int | None = field(default=None, metadata=_help("override the shape's feed-forward size"))
    num_layers: int | None = field(default=None, metadata=_help("override the encoder depth"))
    num_decoder_layers: int | None = field(
        default=None, metadata=_help("override the decoder depth")
    )
    num_heads: int | None = field(default=None, metadata=_help("override the number of heads"))
    d_kv: int | None = field(default=None, metadata=_help("override the size of one head"))
    feed_forward_proj: str = field(
        default="relu",
        metadata=_help("feed-forward activation: relu (T5 v1.0), gated-gelu (T5 v1.1), gated-silu"),
    )
    dropout_rate: float = field(default=0.1, metadata=_help("dropout of the scratch model"))
    tie_word_embeddings: bool = field(
        default=True,
        metadata=_help("share input embeddings and output projection (scratch models)"),
    )
    gradient_checkpointing: bool = field(
        default=False, metadata=_help("recompute activations in the backward pass to save memory")
    )
    lora: LoraConfig = field(default_factory=LoraConfig, metadata=_help("LoRA adapters (PEFT)"))

    def validate(self, prefix: str = "model") -> None:
        """Raise :class:`ConfigError` on the first invalid field."""
        if self.pretrained is None and self.size not in MODEL_SIZES:
            raise ConfigError(
                f"{prefix}.size must be one of {sorted(MODEL_SIZES)} (or set {prefix}.pretrained), "
                f"got {self.size!r}"
            )
        for name in ("d_model", "d_ff", "num_layers", "num_decoder_layers", "num_heads", "d_kv"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 1):
                raise ConfigError(
                    f"{prefix}.{name} must be a positive integer or null, got {value!r}"
                )
        if self.feed_forward_proj not in ("relu", "gelu", "gated-gelu", "gated-silu"):
            raise ConfigError(
                f"{prefix}.feed_forward_proj must be relu, gelu, gated-gelu or gated-silu, "
                f"got {self.feed_forward_proj!r}"
            )
        if not 0.0 <= self.dropout_rate < 1.0:
            raise ConfigError(f"{prefix}.dropout_rate must be in [0, 1), got {self.dropout_rate!r}")
        self.lora.validate(f"{prefix}.lora")
        if self.lora.enabled and self.pretrained is None:
            raise ConfigError(
                f"{prefix}.lora.enabled needs {prefix}.pretrained (adapters on a randomly "
                f"initialised model make no sense), got {prefix}.pretrained=None"
            )

    def shape(self) -> dict[str, int]:
        """The scratch model's shape: the named size with the explicit overrides applied."""
        shape = dict(MODEL_SIZES[self.size])
        for name in shape:
            value = getattr(self, name)
            if value is not None:
                shape[name] = value
        return shape

"""The run configuration: typed dataclasses, loaded from YAML, overridden on the command line.

One :class:`Config` composes the sections of every stage::

    data       DataConfig       which graph (embedded name, dataset folder or path)
    tokenizer  TokenizerConfig  SentencePiece settings or a pretrained tokenizer
    model      ModelConfig      named T5 shape or pretrained checkpoint, LoRA
    context    ContextConfig    source-string layout and budget (kgt5mm.context)
    train      TrainConfig      optimizer, schedule, batches, checkpoints, validation
    eval       EvalConfig       constrained ranking settings (kgt5mm.evaluation)

::

    cfg = Config.from_yaml("run_scripts/wn9_img_cpu.yaml", overrides=["train.lr=3e-4"])
    cfg.to_yaml("run.yaml"); Config.from_dict(cfg.to_dict()) == cfg

Overrides are ``section.field=value`` (nested: ``model.lora.r=16``); values are parsed as YAML
(``null``, ``true``, ``[q, v]``, ``3e-4``). Every value is type-checked and every section
validated before anything runs; a bad value raises :class:`~kgt5mm.errors.ConfigError` that
names the field and the value. The resolved config is saved in every checkpoint and model folder.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union

import yaml

from kgt5mm.context.config import ContextConfig
from kgt5mm.errors import ConfigError
from kgt5mm.evaluation import EvalConfig
from kgt5mm.files import atomic_write_text
from kgt5mm.modeling.config import LoraConfig, ModelConfig, TokenizerConfig

__all__ = [
    "Config",
    "DataConfig",
    "TrainConfig",
    "TokenizerConfig",
    "ModelConfig",
    "LoraConfig",
    "ContextConfig",
    "EvalConfig",
    "CONFIG_FILE",
    "parse_overrides",
    "config_help",
]

#: file name of the resolved config inside run, checkpoint and model folders
CONFIG_FILE = "config.yaml"


def _help(text: str) -> dict[str, Any]:
    return {"help": text}


@dataclass
class DataConfig:
    """Which knowledge graph to train on."""

    dataset: str = field(
        default="wn9_img",
        metadata=_help(
            "embedded name (wn9_img, wn9_img_tiny), a dataset name under data_dir (mkg_w, mkg_y), "
            "or a path to a dataset folder"
        ),
    )
    data_dir: str | None = field(
        default=None,
        metadata=_help(
            "folder that holds the named datasets (e.g. ../shared/data); None = embedded only"
        ),
    )
    train_limit: int | None = field(
        default=None,
        metadata=_help("use only the first N train triples (quick experiments); None = all"),
    )

    def validate(self, prefix: str = "data") -> None:
        """Raise :class:`ConfigError` on the first invalid field."""
        if not self.dataset:
            raise ConfigError(f"{prefix}.dataset must name a dataset, got {self.dataset!r}")
        if self.train_limit is not None and self.train_limit < 1:
            raise ConfigError(
                f"{prefix}.train_limit must be >= 1 or null, got {self.train_limit!r}"
            )


@dataclass
class TrainConfig:
    """The training loop: optimizer, schedule, batches, validation, checkpoints, logs."""

    output_dir: str = field(
        default="checkpoints",
        metadata=_help("parent folder of runs: the run writes to <output_dir>/<name>/"),
    )
    seed: int = field(
        default=0, metadata=_help("seed of model init, data order (with the epoch) and dropout")
    )
    optimizer: str = field(default="adamw", metadata=_help("adamw or adafactor"))
    lr: float = field(default=1e-3, metadata=_help("peak learning rate"))
    weight_decay: float = field(
        default=0.0, metadata=_help("decoupled weight decay (not on norms/biases)")
    )
    adam_betas: list[float] = field(
        default_factory=lambda: [0.9, 0.999], metadata=_help("AdamW betas")
    )
    lr_schedule: str = field(
        default="linear",
        metadata=_help("decay after warm-up: linear, cosine, constant, inverse_sqrt"),
    )
    warmup_steps: int = field(default=500, metadata=_help("optimizer steps of linear warm-up"))
    epochs: float = field(
        default=10.0, metadata=_help("passes over the train queries (both directions)")
    )
    max_steps: int | None = field(
        default=None, metadata=_help("optimizer steps in total; overrides epochs when set")
    )
    batch_size: int = field(default=64, metadata=_help("queries per batch and process"))
    gradient_accumulation_steps: int = field(
        default=1,
        metadata=_help("batches per optimizer step (total batch = batch_size x processes x this)"),
    )
    max_grad_norm: float | None = field(
        default=1.0, metadata=_help("gradient clipping; null = off")
    )
    mixed_precision: str = field(
        default="bf16",
        metadata=_help("no, bf16 or fp16 (autocast; bf16 is about 1.6x faster on recent CPUs)"),
    )
    num_threads: int | None = field(default=None, metadata=_help(
        "torch CPU threads per process; null = torch's default. On a busy or small CPU, 1 thread "
        "per process avoids oversubscription (tiny models run several times faster)"))
    max_source_length: int = field(
        default=512,
        metadata=_help(
            "hard cap on source tokens (the context budget should keep sources shorter)"
        ),
    )
    length_grouping: bool = field(
        default=True,
        metadata=_help("sort queries by length inside shuffled mega-batches to cut padding"),
    )
    group_size: int = field(default=256, metadata=_help(
        "batches per length-sorted mega-batch (larger: less padding, less mixing; 256 gives "
        "6% padding on MKG-W at batch 64)"))
    out_of_context_weight: float = field(
        default=1.0,
        metadata=_help(
            "loss weight of training examples whose answer is not among the neighbour edges "
            "of their built source (1 = plain mean loss; < 1 trains copying from the context "
            "more than recalling answers from memory; 0 = ignore such examples)"
        ),
    )
    eval_every_steps: int | None = field(
        default=500,
        metadata=_help(
            "validation MRR every N optimizer steps (and at the end); null = only at the end"
        ),
    )
    eval_queries: int | None = field(
        default=500,
        metadata=_help(
            "size of the fixed random validation subset (queries, both directions); null = all"
        ),
    )
    metric: str = field(
        default="both.realistic.mrr",
        metadata=_help(
            "validation metric that picks the best checkpoint and drives early stopping"
        ),
    )
    early_stopping_patience: int | None = field(
        default=None,
        metadata=_help("stop after this many validations without improvement; null = never"),
    )
    save_every_steps: int | None = field(
        default=500,
        metadata=_help("save_state for --resume every N optimizer steps; null = only at the end"),
    )
    keep_states: int = field(default=2, metadata=_help("resumable states kept on disk (latest N)"))
    log_every_steps: int = field(
        default=20, metadata=_help("train loss/lr/throughput log interval")
    )
    log_samples: int = field(default=3, metadata=_help("sampled sources logged at the start"))
    tensorboard: bool = field(
        default=True, metadata=_help("also log to TensorBoard (<run>/tensorboard)")
    )
    test_at_end: bool = field(
        default=True, metadata=_help("evaluate the best checkpoint on the test split at the end")
    )
    save_model: bool = field(
        default=True, metadata=_help("write the Hub-ready model folder <run>/model at the end")
    )

    def validate(self, prefix: str = "train") -> None:
        """Raise :class:`ConfigError` on the first invalid field."""

        def bad(name: str, rule: str) -> ConfigError:
            return ConfigError(f"{prefix}.{name} {rule}, got {getattr(self, name)!r}")

        if self.optimizer not in ("adamw", "adafactor"):
            raise bad("optimizer", "must be 'adamw' or 'adafactor'")
        if not self.lr > 0 or self.lr > 1:
            raise bad("lr", "must be in (0, 1]")
        if self.weight_decay < 0:
            raise bad("weight_decay", "must be >= 0")
        if len(self.adam_betas) != 2 or not all(0 <= b < 1 for b in self.adam_betas):
            raise bad("adam_betas", "must be two numbers in [0, 1)")
        if self.lr_schedule not in ("linear", "cosine", "constant", "inverse_sqrt"):
            raise bad("lr_schedule", "must be linear, cosine, constant or inverse_sqrt")
        if self.warmup_steps < 0:
            raise bad("warmup_steps", "must be >= 0")
        if not self.epochs > 0 or (self.max_steps is None and not math.isfinite(self.epochs)):
            raise bad("epochs", "must be > 0 (and finite unless max_steps is set)")
        for name in (
            "num_threads",
            "max_steps",
            "eval_every_steps",
            "eval_queries",
            "save_every_steps",
            "early_stopping_patience",
        ):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise bad(name, "must be >= 1 or null")
        for name in (
            "batch_size",
            "gradient_accumulation_steps",
            "max_source_length",
            "group_size",
            "keep_states",
            "log_every_steps",
        ):
            if getattr(self, name) < 1:
                raise bad(name, "must be >= 1")
        if self.log_samples < 0:
            raise bad("log_samples", "must be >= 0")
        if not 0 <= self.out_of_context_weight <= 1:
            raise bad("out_of_context_weight", "must be in [0, 1]")
        if self.max_grad_norm is not None and not self.max_grad_norm > 0:
            raise bad("max_grad_norm", "must be > 0 or null")
        if self.mixed_precision not in ("no", "bf16", "fp16"):
            raise bad("mixed_precision", "must be no, bf16 or fp16")
        if self.metric not in selectable_metrics():
            if self.metric.endswith(".mean_rank"):
                raise bad("metric", "must be higher-is-better (the best checkpoint is the maximum); "
                                    "mean_rank is lower-is-better, use an mrr or hits_at_k key")
            sides, ranks, names = _metric_parts()
            raise bad("metric", "must be a validation metric key such as both.realistic.mrr: "
                                f"{{{','.join(sides)}}}.{{{','.join(ranks)}}}.{{{','.join(names)}}} "
                                f"or {{{','.join(sides)}}}.in_beam_share")


def _metric_parts() -> tuple[tuple[str, ...], tuple[str, ...], list[str]]:
    """Sides, rank types and higher-is-better metric names of the validation keys."""
    from kgt5mm.evaluation.metrics import METRIC_NAMES, RANK_TYPES, SIDES

    return SIDES, RANK_TYPES, [n for n in METRIC_NAMES if n != "mean_rank"]


def selectable_metrics() -> frozenset[str]:
    """Validation metric keys ``train.metric`` may name (all higher-is-better)."""
    sides, ranks, names = _metric_parts()
    return frozenset([f"{side}.{rank}.{n}" for side in sides for rank in ranks for n in names]
                     + [f"{side}.in_beam_share" for side in sides])


@dataclass
class Config:
    """A whole training run; ``name`` is also the run folder under ``train.output_dir``."""

    name: str = field(default="run", metadata=_help("run name: <train.output_dir>/<name>/"))
    data: DataConfig = field(default_factory=DataConfig, metadata=_help("the graph"))
    tokenizer: TokenizerConfig = field(default_factory=TokenizerConfig, metadata=_help("tokenizer"))
    model: ModelConfig = field(default_factory=ModelConfig, metadata=_help("the seq2seq model"))
    context: ContextConfig = field(default_factory=ContextConfig, metadata=_help("source strings"))
    train: TrainConfig = field(default_factory=TrainConfig, metadata=_help("the training loop"))
    eval: EvalConfig = field(
        default_factory=EvalConfig,
        metadata=_help(
            "constrained ranking (validation and the final test; eval.max_queries subsets the test)"
        ),
    )

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_dict(cls, data: dict[str, Any] | None, overrides: list[str] | None = None) -> Config:
        """Build and validate a config from a nested dict plus ``key.sub=value`` overrides."""
        data = _deep_copy(data or {})
        for key, value in parse_overrides(overrides or []):
            _set_path(data, key, value)
        config = _build(cls, data, prefix="")
        config.validate()
        return config

    @classmethod
    def from_yaml(cls, path: str | Path, overrides: list[str] | None = None) -> Config:
        """Load ``path`` (YAML mapping of sections), apply overrides, validate."""
        path = Path(path)
        try:
            data = load_yaml(path.read_text(encoding="utf-8"))
        except FileNotFoundError as error:
            raise ConfigError(f"config file {str(path)!r} does not exist") from error
        except yaml.YAMLError as error:
            raise ConfigError(f"config file {str(path)!r} is not valid YAML: {error}") from error
        if data is not None and not isinstance(data, dict):
            raise ConfigError(
                f"config file {str(path)!r} must hold a mapping, got {type(data).__name__}"
            )
        return cls.from_dict(data, overrides)

    # ------------------------------------------------------------------ output
    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict (YAML/JSON serialisable)."""
        return dataclasses.asdict(self)

    def to_yaml(self, path: str | Path | None = None) -> str:
        """The YAML text of the config; also written atomically to ``path`` when given."""
        text = yaml.safe_dump(self.to_dict(), sort_keys=False, allow_unicode=True)
        if path is not None:
            atomic_write_text(path, text)
        return text

    # ------------------------------------------------------------------ checks
    def validate(self) -> None:
        """Validate every section; raise :class:`ConfigError` naming the field and value."""
        if not self.name or any(c in self.name for c in "/\\") or self.name in (".", ".."):
            raise ConfigError(f"name must be a plain folder name, got {self.name!r}")
        for section in dataclasses.fields(self):
            value = getattr(self, section.name)
            validate = getattr(value, "validate", None)
            if callable(validate):  # sections owned elsewhere may take no prefix argument
                takes_prefix = len(inspect.signature(validate).parameters) >= 1
                validate(section.name) if takes_prefix else validate()
        if self.model.pretrained is not None and self.tokenizer.pretrained is None:
            raise ConfigError(
                "model.pretrained is set but tokenizer.pretrained is null: a pretrained checkpoint "
                f"needs its own tokenizer (set tokenizer.pretrained={self.model.pretrained!r})"
            )

    @property
    def run_dir(self) -> Path:
        """``<train.output_dir>/<name>``."""
        return Path(self.train.output_dir) / self.name


# ---------------------------------------------------------------------- helpers
class _Loader(yaml.SafeLoader):
    """``SafeLoader`` with YAML 1.2 booleans: only true/false, so ``name: off`` stays a string."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver("tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
                              list("tTfF"))


def load_yaml(text: str) -> Any:
    """Parse config YAML: like ``yaml.safe_load``, but yes/no/on/off are strings, not booleans
    (a run named ``off`` keeps its name; bool fields still accept them, see ``_coerce``)."""
    return yaml.load(text, Loader=_Loader)  # noqa: S506 (a SafeLoader subclass)


def parse_overrides(overrides: list[str]) -> list[tuple[str, Any]]:
    """``["train.lr=3e-4", "model.lora.target_modules=[q,v]"]`` -> ``[(key, value), ...]``.

    Values are parsed as YAML; a value YAML cannot parse stays a string.
    """
    parsed = []
    for item in overrides:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key or any(not part for part in key.split(".")):
            raise ConfigError(f"override must look like section.field=value, got {item!r}")
        try:
            value = load_yaml(text) if text.strip() else ""
        except yaml.YAMLError:
            value = text
        parsed.append((key, value))
    return parsed


def _deep_copy(data: Any) -> Any:
    if isinstance(data, dict):
        return {k: _deep_copy(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_deep_copy(v) for v in data]
    return data


def _set_path(data: dict[str, Any], key: str, value: Any) -> None:
    parts = key.split(".")
    node = data
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"override {key!r}: {part!r} is a value, not a section")
        node = child
    node[parts[-1]] = value


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _coerce(value: Any, tp: Any, name: str) -> Any:
    """Check ``value`` against annotation ``tp`` (int -> float allowed); return the value."""
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, name)
            except ConfigError as error:
                errors.append(error)
        raise ConfigError(
            f"{name} must be {' or '.join(_type_name(a) for a in args)}, got {value!r}"
        )
    if origin is typing.Literal:
        if value not in typing.get_args(tp):
            raise ConfigError(f"{name} must be one of {list(typing.get_args(tp))}, got {value!r}")
        return value
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{name} must be a list, got {value!r}")
        (item_tp, *_) = typing.get_args(tp) or (Any,)
        return [_coerce(v, item_tp, f"{name}[{i}]") for i, v in enumerate(value)]
    if origin is dict or tp is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{name} must be a mapping, got {value!r}")
        return value
    if tp is Any:
        return value
    if tp is bool:
        if isinstance(value, str) and value.lower() in _BOOL_WORDS:
            value = _BOOL_WORDS[value.lower()]
        if not isinstance(value, bool):
            raise ConfigError(f"{name} must be true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{name} must be an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, str):  # YAML 1.1 reads "3e-4" (no dot) as a string
            try:
                value = float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{name} must be a number, got {value!r}")
        return float(value)
    if tp is str:
        if isinstance(value, bool):  # `field: true` written for a text field
            value = "true" if value else "false"
        if not isinstance(value, str):
            raise ConfigError(f"{name} must be a string, got {value!r}")
        return value
    if dataclasses.is_dataclass(tp):
        return _build(tp, value, prefix=name + ".")
    return value


_BOOL_WORDS = {"yes": True, "on": True, "no": False, "off": False}


def _build(cls: type, data: Any, *, prefix: str) -> Any:
    """Instantiate dataclass ``cls`` from ``data`` (a mapping), checking names and types."""
    where = prefix[:-1] or "config"
    if isinstance(data, cls):
        return data
    if not isinstance(data, dict):
        raise ConfigError(f"{where} must be a mapping of fields, got {data!r}")
    hints = typing.get_type_hints(cls)
    known = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise ConfigError(
            f"unknown field {prefix}{unknown[0]} (value {data[unknown[0]]!r}); "
            f"fields of {where}: {', '.join(sorted(known))}"
        )
    kwargs = {key: _coerce(value, hints[key], prefix + key) for key, value in data.items()}
    try:
        return cls(**kwargs)
    except ConfigError:
        raise
    except (TypeError, ValueError) as error:
        raise ConfigError(f"invalid {where}: {error}") from error


def config_help(cls: type = Config, prefix: str = "") -> list[str]:
    """One line per field: ``key (type, default): help`` -- the text of ``--help-config``."""
    lines = []
    hints = typing.get_type_hints(cls)
    instance = cls()
    for f in dataclasses.fields(cls):
        value = getattr(instance, f.name)
        if dataclasses.is_dataclass(value):
            lines.extend(config_help(type(value), prefix + f.name + "."))
            continue
        lines.append(
            f"{prefix}{f.name} ({_type_name(hints[f.name])}, default {value!r}): "
            f"{f.metadata.get('help', '')}"
        )
    return lines

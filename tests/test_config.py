"""Run configs: YAML + overrides, type checks and validation with clear messages."""

from __future__ import annotations

from pathlib import Path

import pytest

from kgt5mm.config import Config, config_help, parse_overrides
from kgt5mm.errors import ConfigError

RUN_SCRIPTS = sorted((Path(__file__).resolve().parents[1] / "run_scripts").glob("*.yaml"))


@pytest.mark.parametrize("path", RUN_SCRIPTS, ids=lambda p: p.name)
def test_shipped_run_scripts_are_valid(path):
    config = Config.from_yaml(path)
    assert config.name == path.stem


def test_overrides_yaml_round_trip(tmp_path):
    config = Config.from_dict({"train": {"lr": 1e-4}}, [
        "train.lr=3e-4", "model.lora.target_modules=[q, k, v]", "model.d_model=96",
        "eval.num_beams=4", "context.budget_tokens=64", "data.data_dir=null"])
    assert config.train.lr == 3e-4 and config.model.lora.target_modules == ["q", "k", "v"]
    assert config.model.shape()["d_model"] == 96 and config.eval.num_beams == 4
    config.to_yaml(tmp_path / "c.yaml")
    assert Config.from_yaml(tmp_path / "c.yaml") == config
    assert Config.from_dict(config.to_dict()) == config


@pytest.mark.parametrize(("override", "message"), [
    ("train.lr=-1", r"train\.lr must be in \(0, 1\], got -1"),
    ("train.lr=fast", r"train\.lr must be a number, got 'fast'"),
    ("train.batch_size=0", r"train\.batch_size must be >= 1, got 0"),
    ("train.batch_size=2.5", r"train\.batch_size must be an integer, got 2\.5"),
    ("train.optimizer=sgd", r"train\.optimizer must be 'adamw' or 'adafactor', got 'sgd'"),
    ("train.mixed_precision=fp8", r"train\.mixed_precision must be no, bf16 or fp16, got 'fp8'"),
    ("train.tensorboard=maybe", r"train\.tensorboard must be true or false, got 'maybe'"),
    ("train.bogus=1", r"unknown field train\.bogus \(value 1\)"),
    ("model.size=huge", r"model\.size must be one of .* got 'huge'"),
    ("model.lora.r=0", r"model\.lora\.r must be >= 1, got 0"),
    ("model.lora.enabled=true", r"model\.lora\.enabled needs model\.pretrained"),
    ("tokenizer.vocab_size=10", r"tokenizer\.vocab_size must be an integer >= 300"),
    ("context.budget_tokens=0", r"context\.budget_tokens must be >= 1, got 0"),
    ("eval.num_beams=0", r"eval\.num_beams must be a positive integer, got 0"),
    ("name=a/b", r"name must be a plain folder name, got 'a/b'"),
    ("train.metric=both.realistic.mean_rank", r"train\.metric must be higher-is-better"),
    ("train.metric=both.realistic.mmr", r"train\.metric must be a validation metric key"),
    ("train.epochs=.inf", r"train\.epochs must be > 0 \(and finite unless max_steps is set\)"),
    ("tokenizer.model_type=bpe", r"tokenizer\.model_type must be 'unigram'"),
    ("train=3", r"train must be a mapping of fields, got 3"),
])
def test_bad_values_are_rejected_with_field_and_value(override, message):
    with pytest.raises(ConfigError, match=message):
        Config.from_dict({}, [override])


def test_yes_no_on_off_are_text_for_text_fields_and_booleans_for_bool_fields(tmp_path):
    # YAML 1.1 reads a bare off / yes as a boolean; a run named "off" must keep its name
    config = Config.from_dict({}, ["name=off", "train.tensorboard=yes", "train.mixed_precision=no"])
    assert config.name == "off" and config.train.tensorboard is True and config.train.mixed_precision == "no"
    (tmp_path / "c.yaml").write_text("name: on\ntrain:\n  tensorboard: off\n  metric: tail.realistic.mrr\n")
    config = Config.from_yaml(tmp_path / "c.yaml")
    assert config.name == "on" and config.train.tensorboard is False
    assert config.train.metric == "tail.realistic.mrr"
    assert Config.from_dict({}, ["train.epochs=.inf", "train.max_steps=5"]).train.max_steps == 5


def test_pretrained_model_needs_its_tokenizer():
    with pytest.raises(ConfigError, match="tokenizer.pretrained"):
        Config.from_dict({}, ["model.pretrained=google-t5/t5-small"])


def test_bad_files_and_override_syntax(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        Config.from_yaml(tmp_path / "missing.yaml")
    (tmp_path / "list.yaml").write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="must hold a mapping"):
        Config.from_yaml(tmp_path / "list.yaml")
    with pytest.raises(ConfigError, match="section.field=value"):
        parse_overrides(["train.lr"])


def test_help_lists_every_field_with_its_help():
    lines = config_help()
    assert any(line.startswith("train.lr (float, default 0.001): peak learning rate") for line in lines)
    assert any(line.startswith("context.budget_tokens") for line in lines)
    assert all(line.split(": ", 1)[1] for line in lines)

"""Tests of the versioned prompt templates in prompts/."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from kgt5mm.context import SPECIAL_TOKENS, list_prompts, load_prompt
from kgt5mm.context.prompts import prompt_dir
from kgt5mm.errors import ConfigError, DataFormatError

REPO_PROMPTS = Path(__file__).resolve().parents[1] / "prompts"
EXPECTED = {"relevance_filter", "entity_description", "link_caption", "link_caption_one_image",
            "image_set_summary", "context_source"}


def test_all_prompts_load_with_id_and_version():
    assert set(list_prompts()) == EXPECTED
    for pid in EXPECTED:
        prompt = load_prompt(pid)
        assert prompt.id == pid and prompt.version >= 1 and prompt.description
        assert prompt.ref == {"prompt_id": pid, "prompt_version": prompt.version}


def test_packaged_prompts_equal_the_repository_files():
    root = prompt_dir()
    for pid in EXPECTED:
        assert (root / f"{pid}.yaml").read_text() == (REPO_PROMPTS / f"{pid}.yaml").read_text()
    assert not (REPO_PROMPTS / ".keep").exists()


def test_render_checks_variables():
    prompt = load_prompt("link_caption")
    text = prompt.render(entity="house cat", neighbour="feline", relation="hypernym")
    assert "house cat" in text and "feline" in text and "hypernym" in text
    with pytest.raises(ConfigError):
        prompt.render(entity="house cat", neighbour="feline")
    with pytest.raises(ConfigError):
        prompt.render(entity="a", neighbour="b", relation="c", extra="d")
    relevance = load_prompt("relevance_filter").render(entity="horse")
    assert "yes or no" in relevance.lower()


def test_layout_uses_exactly_the_special_tokens():
    layout = load_prompt("context_source")
    used = {tok for part in layout.parts.values() for tok in SPECIAL_TOKENS if tok in part}
    assert used == set(SPECIAL_TOKENS)
    assert set(layout.variables) == {"query", "neighbours", "description", "examples"}


def test_bad_prompt_files(tmp_path):
    good = yaml.safe_load((REPO_PROMPTS / "relevance_filter.yaml").read_text())
    (tmp_path / "relevance_filter.yaml").write_text(yaml.safe_dump({**good, "template": "{unknown}"}))
    with pytest.raises(DataFormatError, match="undeclared"):
        load_prompt("relevance_filter", folder=tmp_path)
    (tmp_path / "x.yaml").write_text(yaml.safe_dump({**good, "id": "y"}))
    with pytest.raises(DataFormatError, match="declares id"):
        load_prompt("x", folder=tmp_path)
    (tmp_path / "v.yaml").write_text(yaml.safe_dump({**good, "id": "v", "version": "one"}))
    with pytest.raises(DataFormatError, match="version"):
        load_prompt("v", folder=tmp_path)
    with pytest.raises(ConfigError):
        load_prompt("no_such_prompt")

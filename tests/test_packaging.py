"""The installable package is complete: every subpackage listed, prompts and data installed."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    tomllib = pytest.importorskip("tomli")


def test_every_subpackage_is_listed_in_pyproject():
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    on_disk = {
        ".".join(init.parent.relative_to(ROOT).parts)
        for init in (ROOT / "kgt5mm").rglob("__init__.py")
    }
    assert on_disk - listed == set(), "add these packages to pyproject.toml [tool.setuptools] packages"
    assert "kgt5mm._prompts" in listed


def test_prompt_templates_are_installed_with_the_package():
    from importlib import resources

    names = {p.name for p in resources.files("kgt5mm._prompts").iterdir()}
    repo = {p.name for p in (ROOT / "prompts").glob("*.yaml")}
    assert repo and repo <= names


def test_cli_help_lists_every_command(capsys):
    from kgt5mm.cli import COMMAND_MODULES, main

    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for name in COMMAND_MODULES:
        assert name in out


def test_python_dash_m_kgt5mm_runs_the_cli():
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "kgt5mm", "--version"], capture_output=True,
                         text=True, check=True)
    assert out.stdout.startswith("kgt5mm ")

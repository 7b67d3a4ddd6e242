"""Versioned prompt templates (``prompts/*.yaml``), loaded by id.

Prompts are data: each YAML file in the repository's ``prompts/`` folder holds one template with
``id``, ``version``, ``description``, ``variables`` and ``template`` (plus optional ``parts``:
named sub-templates, used by the source-string layout). The folder is installed as the package
``kgt5mm._prompts``; in an editable install where that mapping is not importable, the loader
falls back to the ``prompts/`` folder of the source checkout. Everything that uses a prompt
records its :attr:`Prompt.ref` (``id`` and ``version``)::

    from kgt5mm.context import load_prompt
    prompt = load_prompt("relevance_filter")
    text = prompt.render(entity="house cat")
"""

from __future__ import annotations

import functools
import importlib.resources
import logging
import string
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from kgt5mm.errors import ConfigError, DataFormatError

__all__ = ["Prompt", "load_prompt", "list_prompts", "prompt_dir", "PROMPT_PACKAGE"]

logger = logging.getLogger(__name__)

#: package the prompts/ folder is installed as (pyproject package-dir mapping)
PROMPT_PACKAGE = "kgt5mm._prompts"
#: fallback: the prompts/ folder next to the kgt5mm package in a source checkout
_SOURCE_PROMPT_DIR = Path(__file__).resolve().parents[2] / "prompts"
_REQUIRED_KEYS = ("id", "version", "description", "variables", "template")


@dataclass(frozen=True)
class Prompt:
    """One versioned prompt template.

    :param id: stable identifier (the file name without ``.yaml``)
    :param version: integer, raised whenever the wording changes
    :param description: what the prompt asks and how its answer is used
    :param variables: the ``{names}`` the template expects
    :param template: ``str.format`` template
    :param parts: named sub-templates (only the source layout uses them)
    :param path: file it was loaded from
    """

    id: str
    version: int
    description: str
    variables: tuple[str, ...]
    template: str
    parts: dict[str, str] = field(default_factory=dict)
    path: str = ""

    @property
    def ref(self) -> dict[str, Any]:
        """``{"prompt_id": id, "prompt_version": version}``, recorded by every user."""
        return {"prompt_id": self.id, "prompt_version": self.version}

    def render(self, **values: Any) -> str:
        """Fill the template; every declared variable must be given, no other."""
        missing = [v for v in self.variables if v not in values]
        extra = [k for k in values if k not in self.variables]
        if missing or extra:
            raise ConfigError(
                f"prompt {self.id!r} v{self.version} expects variables {list(self.variables)}; "
                f"missing {missing}, unexpected {extra}"
            )
        return self.template.format(**values)

    def part(self, name: str) -> str:
        """The sub-template ``name`` (a :class:`ConfigError` if it is not defined)."""
        try:
            return self.parts[name]
        except KeyError:
            raise ConfigError(
                f"prompt {self.id!r} v{self.version} has no part {name!r} (has {sorted(self.parts)})"
            ) from None


def prompt_dir() -> Path | importlib.resources.abc.Traversable:
    """The folder prompts are read from: the installed package, else the source checkout."""
    try:
        root = importlib.resources.files(PROMPT_PACKAGE)
        if any(p.name.endswith(".yaml") for p in root.iterdir()):
            return root
    except (ModuleNotFoundError, FileNotFoundError, NotADirectoryError):
        pass
    if _SOURCE_PROMPT_DIR.is_dir():
        logger.debug("%s not importable; reading prompts from %s", PROMPT_PACKAGE, _SOURCE_PROMPT_DIR)
        return _SOURCE_PROMPT_DIR
    raise ConfigError(f"no prompt folder: neither package {PROMPT_PACKAGE} nor {_SOURCE_PROMPT_DIR}")


def _template_fields(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


def _parse(text: str, path: str) -> Prompt:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise DataFormatError(path, None, f"invalid YAML: {error}") from None
    if not isinstance(data, dict):
        raise DataFormatError(path, None, "a prompt file must hold a mapping", type(data).__name__)
    missing = [k for k in _REQUIRED_KEYS if k not in data]
    if missing:
        raise DataFormatError(path, None, f"prompt misses keys {missing}")
    variables = tuple(str(v) for v in data["variables"] or ())
    template = str(data["template"])
    unknown = _template_fields(template) - set(variables)
    if unknown:
        raise DataFormatError(path, None, f"template uses undeclared variables {sorted(unknown)}")
    if not isinstance(data["version"], int) or data["version"] < 1:
        raise DataFormatError(path, None, "version must be a positive integer", data["version"])
    parts = {str(k): str(v) for k, v in (data.get("parts") or {}).items()}
    return Prompt(
        id=str(data["id"]),
        version=int(data["version"]),
        description=str(data["description"]).strip(),
        variables=variables,
        template=template,
        parts=parts,
        path=path,
    )


@functools.cache
def _load_cached(prompt_id: str, folder: str | None) -> Prompt:
    if folder is not None:
        path = Path(folder) / f"{prompt_id}.yaml"
        if not path.is_file():
            raise ConfigError(f"prompt {prompt_id!r} not found in {folder}")
        text, where = path.read_text(encoding="utf-8"), str(path)
    else:
        root = prompt_dir()
        entry = root / f"{prompt_id}.yaml"
        if not entry.is_file():
            raise ConfigError(f"unknown prompt {prompt_id!r}; known: {list_prompts()}")
        text, where = entry.read_text(encoding="utf-8"), str(entry)
    prompt = _parse(text, where)
    if prompt.id != prompt_id:
        raise DataFormatError(where, None, f"file declares id {prompt.id!r}, expected {prompt_id!r}")
    return prompt


def load_prompt(prompt_id: str, *, folder: str | Path | None = None) -> Prompt:
    """Load the prompt ``prompt_id`` from ``folder`` (default: the packaged prompts)."""
    return _load_cached(prompt_id, None if folder is None else str(folder))


def list_prompts(*, folder: str | Path | None = None) -> list[str]:
    """Ids of all prompts in ``folder`` (default: the packaged prompts), sorted."""
    root = Path(folder) if folder is not None else prompt_dir()
    return sorted(p.name[: -len(".yaml")] for p in root.iterdir() if p.name.endswith(".yaml"))

"""Versioned prompt templates (one YAML file each), installed as ``kgt5mm._prompts``.

This file only makes the folder importable as a package (needed by editable installs);
load templates with :func:`kgt5mm.context.load_prompt`.
"""

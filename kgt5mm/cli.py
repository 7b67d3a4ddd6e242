"""The ``kgt5mm`` command line: a thin layer over the library.

Run ``kgt5mm --help`` for the list of commands, ``kgt5mm COMMAND --help`` for one of them::

    kgt5mm data check wn9_img            # validate a dataset, print its statistics
    kgt5mm caption --help                # turn entity images into cached VLM text
    kgt5mm context show wn9_img --head "house cat" --relation _hypernym
    kgt5mm train --config run_scripts/wn9_img_cpu.yaml   # same as train.py
    kgt5mm evaluate checkpoints/wn9_img_cpu/model --split test
    kgt5mm predict checkpoints/wn9_img_cpu/model --split test --top-k 10

Each command lives in its own module under :mod:`kgt5mm.commands`, which exposes
``register(subparsers)``; heavy imports (torch, transformers) happen inside the command
handlers so that ``--help`` stays instant.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

__all__ = ["build_parser", "main"]

#: Command modules under kgt5mm.commands, in the order ``--help`` lists them.
COMMAND_MODULES: tuple[str, ...] = ("data", "caption", "context", "train", "evaluate", "predict", "hub")


def build_parser() -> argparse.ArgumentParser:
    """Build the top-level parser with one subparser per command module."""
    from kgt5mm import __version__

    parser = argparse.ArgumentParser(
        prog="kgt5mm",
        description="Multimodal knowledge graph completion as sequence-to-sequence generation.",
    )
    parser.add_argument("--version", action="version", version=f"kgt5mm {__version__}")
    parser.add_argument(
        "-v", "--verbose", action="count", default=0, help="more logging (-v info, -vv debug)"
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        module = importlib.import_module(f"kgt5mm.commands.{name}")
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``kgt5mm`` console script; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    level = [logging.WARNING, logging.INFO, logging.DEBUG][min(args.verbose, 2)]
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from kgt5mm.commands import close_process_group
    from kgt5mm.errors import KGT5MMError

    try:
        return int(args.handler(args) or 0)
    except KGT5MMError as error:  # user-facing errors: one clear line, no traceback
        print(f"kgt5mm {args.command}: error: {error}", file=sys.stderr)
        return 2
    finally:
        close_process_group()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

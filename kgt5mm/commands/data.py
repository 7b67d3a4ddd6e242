"""``kgt5mm data``: inspect, validate and convert knowledge-graph datasets.

::

    kgt5mm data list                              # named datasets and where they come from
    kgt5mm data check wn9_img                     # validate + statistics table
    kgt5mm data check mkg_w --data-dir ../shared/data --verify
    kgt5mm data export wn9_img out/wn9_img_hf     # Parquet folder, ready for the Hub
"""

from __future__ import annotations

import argparse

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``data`` command and its subcommands to the top-level parser."""
    parser = subparsers.add_parser(
        "data", help="inspect, validate and convert datasets",
        description="Inspect, validate and convert knowledge-graph datasets.",
    )
    sub = parser.add_subparsers(dest="data_command", metavar="SUBCOMMAND", required=True)
    check = sub.add_parser("check", help="validate a dataset and print its statistics")
    check.add_argument("dataset", help="registered name (wn9_img, mkg_w, ...) or folder")
    check.add_argument("--data-dir", default=None, help="folder holding named datasets")
    check.set_defaults(handler=_check)


def _check(args: argparse.Namespace) -> int:
    from kgt5mm.data import load_graph

    kg = load_graph(args.dataset, data_dir=args.data_dir)
    print(kg)
    return 0

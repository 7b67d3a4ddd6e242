"""``kgt5mm data``: list, validate and convert knowledge-graph datasets.

::

    kgt5mm data list                                   # named datasets and their sources
    kgt5mm data check wn9_img                          # validate + statistics table
    kgt5mm data check mkg_w --data-dir ../shared/data --verify
    kgt5mm data check path/to/my_graph                 # any supported folder
    kgt5mm data export wn9_img out/wn9_img_hf          # Parquet folder, ready for the Hub
"""

from __future__ import annotations

import argparse
import json

__all__ = ["register"]

_DATASET_HELP = (
    "registered dataset name (wn9_img, wn9_img_tiny, mkg_w, mkg_y) or a dataset folder "
    "(IKRL, OpenKE + ficha_*, generic TSV, or a kgt5mm Parquet export)"
)
_DATA_DIR_HELP = (
    "folder that holds named datasets as sub-folders (mkg_w/, mkg_y/); default: $KGT5MM_DATA_DIR"
)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``kgt5mm data`` and its subcommands (list, check, export) to the parser."""
    parser = subparsers.add_parser(
        "data",
        help="list, validate and convert knowledge-graph datasets",
        description="List, validate and convert knowledge-graph datasets. WN9-IMG is "
        "embedded; other named datasets are read from --data-dir or $KGT5MM_DATA_DIR.",
    )
    sub = parser.add_subparsers(dest="data_command", metavar="SUBCOMMAND", required=True)

    listing = sub.add_parser(
        "list",
        help="show the named datasets, their sizes, sources and licences",
        description="Show the registry of named datasets.",
    )
    listing.set_defaults(handler=_list)

    check = sub.add_parser(
        "check",
        help="validate a dataset and print its statistics as a table",
        description="Load a dataset with every check of the loaders (column counts, ids, "
        "names, encodings, splits) and print a statistics table: entities, relations, "
        "triples per split, shared names, entities without text or images, valid/test "
        "entities and relations unseen in train, duplicates, skipped rows. Exit status 2 "
        "with file, line and value when the data is malformed.",
    )
    check.add_argument("dataset", help=_DATASET_HELP)
    check.add_argument("--data-dir", default=None, help=_DATA_DIR_HELP)
    check.add_argument(
        "--verify",
        action="store_true",
        help="also compare the files' sha256 with the registry (named datasets only)",
    )
    check.add_argument("--json", action="store_true", help="print the statistics as JSON")
    check.set_defaults(handler=_check)

    export = sub.add_parser(
        "export",
        help="write a dataset as a Hugging Face Parquet dataset folder",
        description="Write a dataset as a Parquet folder with a dataset card (configs "
        "triples / entities / relations, images copied) that can be uploaded to the Hub "
        "as is and loaded back with load_graph(OUT_DIR) or "
        "KnowledgeGraph.from_hf_dataset(repo_id).",
    )
    export.add_argument("dataset", help=_DATASET_HELP)
    export.add_argument("out_dir", help="output folder (created; existing files are replaced)")
    export.add_argument("--data-dir", default=None, help=_DATA_DIR_HELP)
    export.set_defaults(handler=_export)


def _list(args: argparse.Namespace) -> int:
    from kgt5mm.data.registry import DATASETS, TINY_NAME

    for spec in DATASETS.values():
        e, r, tr, va, te = spec.counts
        where = "embedded" if spec.embedded else "data dir"
        print(
            f"{spec.name}  [{spec.format}, {where}]  {e:,} entities, {r} relations, "
            f"{tr:,} / {va:,} / {te:,} triples"
        )
        print(f"    {spec.description}")
        for source in spec.sources:
            print(f"    source: {source}")
        print(f"    licence: {spec.license}")
    print(
        f"{TINY_NAME}  [derived, embedded]  deterministic ~100-entity subgraph of wn9_img "
        "around the 11 sample-photo entities (tests, CPU demos)"
    )
    return 0


def _check(args: argparse.Namespace) -> int:
    from kgt5mm.data import load_graph
    from kgt5mm.data.registry import DATASETS, resolve_dataset, verify_dataset
    from kgt5mm.data.stats import format_table, graph_statistics

    kg = load_graph(args.dataset, data_dir=args.data_dir)
    rows = graph_statistics(kg)
    status = 0
    if args.verify:
        if args.dataset not in DATASETS:
            rows.append(("checksums", "n/a (not a registered dataset)"))
        else:
            folder, _ = resolve_dataset(args.dataset, data_dir=args.data_dir)
            result = verify_dataset(args.dataset, folder)
            bad = [path for path, ok in result.items() if not ok]
            rows.append(("checksums", f"{len(result) - len(bad)}/{len(result)} match"))
            for path in bad:
                rows.append((f"checksum mismatch or missing: {path}", "FAIL"))
            status = 1 if bad else 0
    if args.json:
        print(json.dumps(dict(rows), indent=2))
    else:
        print(format_table(rows))
    return status


def _export(args: argparse.Namespace) -> int:
    from kgt5mm.data import load_graph
    from kgt5mm.data.hf import export_hf

    kg = load_graph(args.dataset, data_dir=args.data_dir)
    out = export_hf(kg, args.out_dir)
    print(f"wrote {kg!r} to {out}")
    return 0

"""``kgt5mm context``: inspect the source strings the context builder writes.

::

    kgt5mm context show wn9_img --head "house cat" --relation _hypernym
    kgt5mm context show wn9_img --head n02121808 --relation _hypernym --inverse
    kgt5mm context show mkg_y --data-dir ../shared/data --head 12 --relation 3 \\
        --tokenizer checkpoints/mkg_y/tokenizer --budget 128 --captions captions.jsonl
    kgt5mm context show wn9_img --head "house cat" --relation _hypernym --set neighbour_selection=random

``show`` prints the exact source string on stdout; ``--explain`` adds its token count and
the included neighbour edges on stderr.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from typing import Any

__all__ = ["register", "tokenizer_counter"]


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``kgt5mm context show``."""
    parser = subparsers.add_parser("context", help="inspect the context builder's source strings")
    sub = parser.add_subparsers(dest="context_command", metavar="SUBCOMMAND", required=True)
    show = sub.add_parser("show", help="print the exact source string of one query")
    show.add_argument("dataset", help="dataset name (wn9_img, wn9_img_tiny, mkg_w, ...) or folder")
    show.add_argument("--data-dir", default=None, help="folder holding the named datasets")
    show.add_argument("--head", required=True,
                      help="the query's known entity: unique name, external id or internal index")
    show.add_argument("--relation", required=True,
                      help="relation id, verbalization or index (0..2R-1; >= R is inverse)")
    show.add_argument("--inverse", action="store_true",
                      help="query the inverse relation (head prediction: (?, r, head))")
    show.add_argument("--tokenizer", default=None,
                      help="tokenizer folder or Hub id to count tokens (default: whitespace words)")
    show.add_argument("--captions", nargs="*", default=(),
                      help="caption caches / user caption files (.jsonl, .tsv, ficha_vlm_desc_*)")
    show.add_argument("--exclude-edge", type=int, default=None,
                      help="train row index to exclude, as while training on that triple")
    show.add_argument("--epoch", type=int, default=0, help="epoch (changes sampling)")
    show.add_argument("--budget", type=int, default=None, help="override budget_tokens")
    show.add_argument("--set", dest="overrides", action="append", default=[], metavar="FIELD=VALUE",
                      help="override a ContextConfig field (repeatable), e.g. num_examples=0")
    show.add_argument("--explain", action="store_true",
                      help="also print token count and included edges on stderr")
    show.set_defaults(handler=_show)


def tokenizer_counter(path: str):
    """``str -> int`` counter of a tokenizer (no special tokens added)."""
    from kgt5mm.modeling import load_tokenizer

    tokenizer = load_tokenizer(path)

    def count(text: str) -> int:
        return len(tokenizer(text, add_special_tokens=False)["input_ids"])

    return count


def _parse_overrides(overrides: list[str]) -> dict[str, Any]:
    from kgt5mm.config import load_yaml
    from kgt5mm.errors import ConfigError

    values: dict[str, Any] = {}
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep:
            raise ConfigError(f"--set expects FIELD=VALUE, got {item!r}")
        values[key.strip()] = load_yaml(raw)
    return values


def _show(args: argparse.Namespace) -> int:
    from kgt5mm.context import CaptionStore, ContextBuilder, ContextConfig
    from kgt5mm.data import load_graph

    kg = load_graph(args.dataset, data_dir=args.data_dir)
    values = dataclasses.asdict(ContextConfig())
    values.update(_parse_overrides(args.overrides))
    if args.budget is not None:
        values["budget_tokens"] = args.budget
    config = ContextConfig.from_dict(values)
    count = tokenizer_counter(args.tokenizer) if args.tokenizer else None
    captions = CaptionStore.from_files(args.captions, kg) if args.captions else None
    builder = ContextBuilder(kg, config, count_tokens=count, captions=captions)
    entity = kg.resolve_entity(args.head)
    q = kg.resolve_query_relation(args.relation, inverse=args.inverse)
    built = builder.select(entity, q, exclude_edge=args.exclude_edge, epoch=args.epoch)
    print(built.text)
    if args.explain:
        unit = "tokens" if count else "words"
        print(f"# {built.num_tokens} {unit} (budget {config.budget_tokens}); query "
              f"({kg.entity_names[entity]!r}, {kg.relation_texts[q]!r}, ?)", file=sys.stderr)
        for n, r, e in zip(built.neighbours, built.query_relations, built.edges, strict=False):
            print(f"#   edge {e}: {kg.relation_texts[r]!r} -> {kg.entity_names[n]!r}", file=sys.stderr)
    return 0

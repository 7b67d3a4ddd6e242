"""``kgt5mm predict``: ranked candidates (ids, names, scores) for a split or a query file.

::

    kgt5mm predict MODEL --split test --top-k 10 --output preds.jsonl
    kgt5mm predict MODEL --queries my_queries.tsv --output preds.parquet
    kgt5mm predict MODEL --queries heads.tsv --inverse --output preds.jsonl

A query file is UTF-8 TSV, one query per line: ``entity<TAB>relation[<TAB>direction]``.
``entity`` is an entity name, an external entity id or an integer id; ``relation`` is a
relation id (as in the dataset) or an integer query relation; ``direction`` is ``tail``
(predict the tail, the default) or ``head`` (predict the head of the relation). ``--inverse``
makes every line a head query. Empty lines and lines starting with ``#`` are skipped. The
output (``.jsonl`` or ``.parquet``, written atomically) has one row per query with its ids,
names and the ranked ``candidates`` (rank, entity, entity_id, name, score).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from kgt5mm.commands.evaluate import add_model_arguments

__all__ = ["read_query_file", "register", "run", "write_predictions"]


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``predict`` command."""
    parser = subparsers.add_parser(
        "predict", help="ranked candidates for a split or a query file (JSONL / Parquet)",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_model_arguments(parser)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--split", choices=("train", "valid", "test"), help="predict a split")
    source.add_argument("--queries", help="TSV file of queries (see above)")
    parser.add_argument("--inverse", action="store_true",
                        help="treat every query of --queries as a head query")
    parser.add_argument("--output", required=True, help="output file: .jsonl or .parquet")
    parser.set_defaults(handler=run)


def read_query_file(path: str | Path, kg, *, inverse: bool = False):
    """Parse a query TSV into an ``(n, 3)`` int64 array ``(entity, query_relation, -1)``.

    :raises DataFormatError: naming the file, the line and the value of a bad row
    """
    import numpy as np

    from kgt5mm.errors import DataFormatError, KGT5MMError
    from kgt5mm.hub import parse_queries

    rows = []
    path = Path(path)
    if not path.is_file():
        raise KGT5MMError(f"query file {str(path)!r} not found")
    for number, raw in enumerate(path.read_bytes().split(b"\n"), start=1):
        try:
            text = raw.decode("utf-8").rstrip("\r")
        except UnicodeDecodeError as error:
            raise DataFormatError(path, number, f"not UTF-8 ({error.reason})", raw[:80]) from None
        if not text.strip() or text.lstrip().startswith("#"):
            continue
        cols = text.split("\t")
        if len(cols) not in (2, 3):
            raise DataFormatError(path, number, "expected 2 or 3 tab-separated columns "
                                  "(entity, relation[, direction])", text)
        entity, relation = cols[0].strip(), cols[1].strip()
        direction = cols[2].strip() if len(cols) == 3 else ("head" if inverse else "tail")
        if inverse and len(cols) == 3 and direction not in ("head", "inverse"):
            raise DataFormatError(path, number, "--inverse conflicts with direction column", text)
        try:  # a digit string is an index where it is no name or id (resolve_entity's order)
            rows.append(parse_queries([(entity, relation, direction)], kg)[0])
        except KGT5MMError as error:
            raise DataFormatError(path, number, str(error), text) from error
    return np.asarray(rows, dtype=np.int64).reshape(-1, 3)


def write_predictions(path: str | Path, records: list[dict]) -> Path:
    """Write prediction rows to ``.jsonl`` or ``.parquet`` atomically."""
    import json

    from kgt5mm.errors import KGT5MMError
    from kgt5mm.files import atomic_path

    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".jsonl", ".parquet"):
        raise KGT5MMError(f"--output must end with .jsonl or .parquet, got {str(path)!r}")
    with atomic_path(path) as tmp:
        if suffix == ".jsonl":
            with open(tmp, "w", encoding="utf-8") as handle:
                for row in records:
                    handle.write(json.dumps(row, ensure_ascii=False) + "\n")
        else:
            import pyarrow as pa
            import pyarrow.parquet as pq

            pq.write_table(pa.Table.from_pylist(records), tmp)
    return path


def run(args: argparse.Namespace) -> int:
    """Handler of ``kgt5mm predict``."""
    import numpy as np

    from kgt5mm.commands.evaluate import load_for_command

    model, kg, accelerator = load_for_command(args)
    if args.split is not None:
        queries = kg.queries(args.split)
    else:
        queries = read_query_file(args.queries, kg, inverse=args.inverse)
    answers = queries[:, 2].copy()
    ranked = model.predict(np.ascontiguousarray(queries[:, :2]), kg=kg, top_k=args.top_k,
                           num_beams=args.num_beams, batch_size=args.batch_size,
                           candidate_views=args.candidate_views,
                           accelerator=accelerator)
    if accelerator.is_main_process:
        R = kg.num_relations
        records = []
        for i, ((e, q), cands) in enumerate(zip(queries[:, :2].tolist(), ranked, strict=True)):
            row = {
                "query": i, "entity": e, "entity_id": kg.entity_ids[e],
                "entity_name": kg.entity_names[e], "query_relation": q,
                "relation_id": kg.relation_ids[q % R], "direction": "head" if q >= R else "tail",
                "answer": int(answers[i]) if answers[i] >= 0 else None,
                "candidates": cands,
            }
            records.append(row)
        path = write_predictions(args.output, records)
        top_k = model.eval_config(top_k=args.top_k).top_k
        print(f"wrote {len(records)} queries x top-{top_k} to {path}")
    return 0

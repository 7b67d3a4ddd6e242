"""Benchmark: load a dataset and build all its indexes (filter + neighbour), wall-clock.

Run (the figure in BENCHMARKS.md)::

    python benchmarks/bench_data_load.py --dataset mkg_w --data-dir ../shared/data --repeats 5

Each repeat is a fresh load (parsing, validation, name disambiguation, relation texts, VLM
text) followed by ``kg.build_indexes()``; the baseline measured in the same run is the bare
read of the same files (bytes from disk, no parsing), so the ratio shows the parsing overhead.
Writes a JSON record through ``benchmarks/_record.py``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _record import write_record  # noqa: E402

from kgt5mm.data import load_graph  # noqa: E402
from kgt5mm.data.registry import resolve_dataset  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", default="mkg_w", help="registered name or folder")
    parser.add_argument("--data-dir", default=None, help="folder holding named datasets")
    parser.add_argument("--repeats", type=int, default=5, help="number of timed loads")
    args = parser.parse_args()

    folder, _ = resolve_dataset(args.dataset, data_dir=args.data_dir)
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    read_times, load_times, index_times = [], [], []
    for _ in range(args.repeats):
        start = time.perf_counter()
        total = sum(len(p.read_bytes()) for p in files)
        read_times.append(time.perf_counter() - start)
        start = time.perf_counter()
        kg = load_graph(args.dataset, data_dir=args.data_dir)
        loaded = time.perf_counter()
        kg.build_indexes()
        done = time.perf_counter()
        load_times.append(done - start)
        index_times.append(done - loaded)
    figures = {
        "load_with_indexes_s_median": round(statistics.median(load_times), 4),
        "load_with_indexes_s_max": round(max(load_times), 4),
        "indexes_only_s_median": round(statistics.median(index_times), 4),
        "baseline_read_bytes_s_median": round(statistics.median(read_times), 4),
        "ratio_load_vs_read": round(
            statistics.median(load_times) / statistics.median(read_times), 1
        ),
        "bytes_read": total,
        "repeats": args.repeats,
        "graph": repr(kg),
    }
    path = write_record(
        "bench_data_load", dataset=args.dataset, split=None, model_size=None, figures=figures
    )
    for key, value in figures.items():
        print(f"{key}: {value}")
    print(f"record: {path}")


if __name__ == "__main__":
    main()

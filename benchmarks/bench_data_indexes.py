"""Benchmark: filter and neighbour indexes of a large synthetic graph (time and peak memory).

Run (the figure in BENCHMARKS.md)::

    python benchmarks/bench_data_indexes.py --entities 5000000 --triples 20000000 --relations 500

Triples are drawn uniformly at random (seeded); 90% go to train, 5% each to valid and test.
Peak memory is the process's maximum resident set size (``ru_maxrss``), which includes the
random triples themselves; the baseline in the same run is one ``np.sort`` of the 2n
int64 query keys, the core operation both indexes need.
Writes a JSON record through ``benchmarks/_record.py``.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _record import write_record  # noqa: E402

from kgt5mm.data.indexes import FilterIndex, NeighbourIndex  # noqa: E402


def peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2  # Linux: KiB


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--entities", type=int, default=5_000_000, help="number of entities")
    parser.add_argument("--triples", type=int, default=20_000_000, help="number of triples")
    parser.add_argument("--relations", type=int, default=500, help="number of relations")
    parser.add_argument("--seed", type=int, default=0, help="random seed")
    args = parser.parse_args()

    rng = np.random.default_rng(args.seed)
    n, E, R = args.triples, args.entities, args.relations
    triples = np.empty((n, 3), dtype=np.int64)
    triples[:, 0] = rng.integers(0, E, n)
    triples[:, 1] = rng.integers(0, R, n)
    triples[:, 2] = rng.integers(0, E, n)
    n_train = int(0.9 * n)
    n_valid = (n - n_train) // 2
    train = triples[:n_train]
    valid = triples[n_train : n_train + n_valid]
    test = triples[n_train + n_valid :]
    rss_data = peak_rss_gb()

    start = time.perf_counter()
    keys = np.concatenate([triples[:, 0], triples[:, 2]]) * (2 * R)
    keys.sort()
    baseline = time.perf_counter() - start
    del keys

    start = time.perf_counter()
    neighbours = NeighbourIndex(train, num_entities=E, num_relations=R)
    t_neighbours = time.perf_counter() - start
    rss_after_neighbours = peak_rss_gb()
    start = time.perf_counter()
    filters = FilterIndex([train, valid, test], num_entities=E, num_relations=R)
    t_filter = time.perf_counter() - start
    rss_peak = peak_rss_gb()

    probe = rng.integers(0, n, 100_000)
    start = time.perf_counter()
    known = filters.is_known(triples[probe, 0], triples[probe, 1], triples[probe, 2])
    t_probe = time.perf_counter() - start
    assert known.all()
    figures = {
        "neighbour_index_s": round(t_neighbours, 2),
        "filter_index_s": round(t_filter, 2),
        "both_indexes_s": round(t_neighbours + t_filter, 2),
        "baseline_sort_2n_keys_s": round(baseline, 2),
        "ratio_both_vs_baseline_sort": round((t_neighbours + t_filter) / baseline, 1),
        "peak_rss_gb": round(rss_peak, 2),
        "rss_after_random_triples_gb": round(rss_data, 2),
        "peak_rss_after_neighbour_index_gb": round(rss_after_neighbours, 2),
        "index_memory_gb": round(
            (
                neighbours.indptr.nbytes
                + neighbours.query_relation.nbytes
                + neighbours.neighbour.nbytes
                + neighbours.edge.nbytes
                + filters.keys.nbytes
                + filters.indptr.nbytes
                + filters.flat_answers.nbytes
            )
            / 1024**3,
            2,
        ),
        "is_known_100k_probes_s": round(t_probe, 3),
        "entities": E,
        "relations": R,
        "triples": n,
    }
    path = write_record(
        "bench_data_indexes",
        dataset=f"synthetic E={E} R={R} n={n}",
        split=None,
        model_size=None,
        figures=figures,
    )
    for key, value in figures.items():
        print(f"{key}: {value}")
    print(f"record: {path}")


if __name__ == "__main__":
    main()

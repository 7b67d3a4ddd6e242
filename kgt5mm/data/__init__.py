"""The knowledge-graph data layer: load benchmarks and users' graphs into a KnowledgeGraph.

::

    from kgt5mm.data import load_graph
    kg = load_graph("wn9_img")                      # embedded WN9-IMG, no download
    kg = load_graph("mkg_w", data_dir="/data/kg")   # named dataset from a data directory
    kg = load_graph("path/to/my_graph")             # IKRL, OpenKE, generic TSV or Parquet export
    kg.queries("test"); kg.filter_index; kg.neighbours

Modules: :mod:`~kgt5mm.data.graph` (the KnowledgeGraph), :mod:`~kgt5mm.data.indexes`
(filter and neighbour indexes), :mod:`~kgt5mm.data.names` (homonym disambiguation),
:mod:`~kgt5mm.data.formats` (file formats), :mod:`~kgt5mm.data.registry` (named datasets),
:mod:`~kgt5mm.data.hf` (Hugging Face datasets / Parquet), :mod:`~kgt5mm.data.stats`
(``kgt5mm data check``).
"""

from __future__ import annotations

from kgt5mm.data.graph import KnowledgeGraph
from kgt5mm.data.indexes import FilterIndex, NeighbourIndex
from kgt5mm.data.names import disambiguate_names
from kgt5mm.data.registry import DATASETS, DatasetSpec, load_graph, verify_dataset

__all__ = [
    "KnowledgeGraph",
    "FilterIndex",
    "NeighbourIndex",
    "load_graph",
    "disambiguate_names",
    "DATASETS",
    "DatasetSpec",
    "verify_dataset",
]

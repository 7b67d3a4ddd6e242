"""Training examples: context sources per epoch, token ids, length-grouped batches, padding.

The stages are pure and separately testable::

    queries, edges = train_queries(kg)                  # (2n, 3) both directions, edge ids
    plan = plan_batches(lengths, batch_size=64, seed=0, epoch=3)   # list of index arrays
    batch = collate(source_ids, label_ids, plan[0], pad_id=0)      # dynamic padding

The batch plan depends only on ``(seed, epoch)`` and the lengths, so a resumed run sees the
same batches in the same order; :func:`shard_batches` gives each process its share.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = [
    "IGNORE_INDEX",
    "example_weighted_loss",
    "EpochData",
    "train_queries",
    "plan_batches",
    "num_planned_batches",
    "shard_batches",
    "collate",
    "padding_share",
    "length_key",
]

#: label value ignored by the cross-entropy loss (padding of the targets)
IGNORE_INDEX = -100


@dataclass
class EpochData:
    """Token ids of one epoch's training examples and this process's batches.

    :ivar source_ids: ``N`` lists of source token ids (sources rebuilt per epoch)
    :ivar label_ids: ``N`` lists of target ids (name + EOS, :func:`encode_targets`)
    :ivar batches: this process's batches, each an index array into the examples
    :ivar padding_share: padded share of source + target positions over all batches
    :ivar num_truncated: sources cut at ``max_source_length``
    :ivar answer_in_context: ``(N,)`` bool: the example's answer is one of the neighbour
        edges of its built source
    """

    source_ids: list[list[int]]
    label_ids: list[list[int]]
    batches: list[np.ndarray]
    padding_share: float
    num_truncated: int
    answer_in_context: np.ndarray | None = None


def train_queries(kg, *, limit: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Training queries of both directions and the train row each comes from.

    :return: ``queries`` ``(2n, 3)`` (tail queries then head queries, as ``kg.queries``) and
        ``edges`` ``(2n,)`` = train row index, the ``exclude_edge`` of the context builder
    """
    train = kg.splits["train"]
    n = len(train) if limit is None else min(limit, len(train))
    queries = np.asarray(kg.queries("train"), dtype=np.int64)
    rows = np.arange(len(train), dtype=np.int64)
    edges = np.concatenate([rows, rows])
    if n < len(train):
        keep = np.concatenate([rows[:n], rows[:n] + len(train)])
        queries, edges = queries[keep], edges[keep]
    return queries, edges


def _rng(seed: int, epoch: int) -> np.random.Generator:
    return np.random.default_rng([int(seed), int(epoch), 0x6B67])


def num_planned_batches(num_examples: int, *, batch_size: int, group_size: int,
                        length_grouping: bool = True) -> int:
    """How many batches :func:`plan_batches` makes (independent of the lengths)."""
    if not length_grouping:
        return -(-num_examples // batch_size)
    mega = batch_size * group_size
    full, rest = divmod(num_examples, mega)
    return full * group_size + -(-rest // batch_size)


def plan_batches(
    lengths: Sequence[int] | np.ndarray,
    *,
    batch_size: int,
    seed: int,
    epoch: int,
    group_size: int = 64,
    length_grouping: bool = True,
) -> list[np.ndarray]:
    """Shuffled batches of example indices; similar lengths share a batch when grouping.

    The examples are permuted with an RNG seeded by ``(seed, epoch)``, cut into mega-batches of
    ``batch_size * group_size``, each sorted by length (longest first), cut into batches, and
    the batch order is shuffled again. Every example appears exactly once.

    :param lengths: ``(N,)`` sort key of each example (:func:`length_key`)
    :return: list of int64 index arrays (the last batch of a mega-batch may be smaller)
    """
    lengths = np.asarray(lengths, dtype=np.int64)
    rng = _rng(seed, epoch)
    order = rng.permutation(len(lengths))
    if not length_grouping:
        return [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
    mega = batch_size * group_size
    batches: list[np.ndarray] = []
    for start in range(0, len(order), mega):
        chunk = order[start:start + mega]
        chunk = chunk[np.argsort(-lengths[chunk], kind="stable")]
        batches.extend(chunk[i:i + batch_size] for i in range(0, len(chunk), batch_size))
    return [batches[i] for i in rng.permutation(len(batches))]


def shard_batches(batches: list[np.ndarray], *, process_index: int, num_processes: int,
                  multiple_of: int = 1) -> list[np.ndarray]:
    """This process's batches: every ``num_processes``-th one, all processes equally many.

    The batch list is extended cyclically so its length is a multiple of
    ``num_processes * multiple_of`` (a handful of examples are seen twice per epoch rather
    than skipped), then dealt round-robin.
    """
    unit = num_processes * multiple_of
    if not batches:
        return []
    total = -(-len(batches) // unit) * unit
    extended = [batches[i % len(batches)] for i in range(total)]
    return extended[process_index::num_processes]


def collate(source_ids: Sequence[Sequence[int]], label_ids: Sequence[Sequence[int]],
            indices: np.ndarray, *, pad_id: int) -> dict[str, np.ndarray]:
    """Pad one batch to its own longest source and target (dynamic padding).

    :return: ``input_ids`` and ``attention_mask`` ``(B, S)``, ``labels`` ``(B, T)`` with
        :data:`IGNORE_INDEX` at padded target positions (int64 numpy arrays)
    """
    sources = [source_ids[i] for i in indices]
    labels = [label_ids[i] for i in indices]
    width = max(len(s) for s in sources)
    depth = max(len(t) for t in labels)
    input_ids = np.full((len(sources), width), pad_id, dtype=np.int64)
    attention = np.zeros((len(sources), width), dtype=np.int64)
    targets = np.full((len(labels), depth), IGNORE_INDEX, dtype=np.int64)
    for row, (s, t) in enumerate(zip(sources, labels, strict=True)):
        input_ids[row, :len(s)] = s
        attention[row, :len(s)] = 1
        targets[row, :len(t)] = t
    return {"input_ids": input_ids, "attention_mask": attention, "labels": targets}


def example_weighted_loss(logits, labels, weights):
    """Token cross-entropy with one weight per example, normalized by the weighted token count.

    With all weights 1 this is the plain mean over non-ignored target tokens (what
    ``T5ForConditionalGeneration`` returns as ``loss``); weight 0 removes an example.

    :param logits: ``(B, T, V)`` decoder logits
    :param labels: ``(B, T)`` target ids, :data:`IGNORE_INDEX` at padding
    :param weights: ``(B,)`` non-negative example weights
    :returns: scalar loss (0 with no gradient signal when every weight is 0)
    """
    import torch

    token_loss = torch.nn.functional.cross_entropy(
        logits.float().flatten(0, 1), labels.flatten(), ignore_index=IGNORE_INDEX, reduction="none"
    ).view_as(labels)
    token_weight = (labels != IGNORE_INDEX).float() * weights.float().unsqueeze(1)
    return (token_loss * token_weight).sum() / token_weight.sum().clamp_min(1e-12)


def length_key(source_lengths: np.ndarray, label_lengths: np.ndarray) -> np.ndarray:
    """Sort key of :func:`plan_batches`: source length, then target length (lexicographic).

    Sources and targets are padded separately, so sorting by their sum leaves the targets
    mixed; the lexicographic key cuts padding on WN9-IMG from 11.5% to 6.8% (batch 64).
    """
    source_lengths = np.asarray(source_lengths, dtype=np.int64)
    label_lengths = np.asarray(label_lengths, dtype=np.int64)
    width = int(label_lengths.max(initial=0)) + 1
    return source_lengths * width + label_lengths


def padding_share(source_lengths: np.ndarray, label_lengths: np.ndarray,
                  batches: Sequence[np.ndarray]) -> float:
    """Share of padded positions (source and target) over all positions of ``batches``."""
    real = padded = 0
    for batch in batches:
        s, t = source_lengths[batch], label_lengths[batch]
        real += int(s.sum() + t.sum())
        padded += int(s.max()) * len(batch) + int(t.max()) * len(batch)
    return 0.0 if padded == 0 else 1.0 - real / padded

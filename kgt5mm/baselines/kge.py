"""Knowledge-graph-embedding baselines ranked with kgt5mm's own filtered evaluator.

A same-protocol baseline for the seq2seq models: a classic embedding model (one vector per
entity) trained on the same split and ranked with exactly the same filtered, realistic-rank
protocol (:func:`kgt5mm.evaluation.rank_from_scores`, both directions, train + valid + test
filter). It answers "how does kgt5mm compare with a KGE model on this graph?" without a second
evaluation code path.

Models (all with reciprocal relations: query relation ``q`` in ``[0, 2R)`` has its own
embedding, so head queries ``(t, r + R, ?)`` are scored like tail queries):

- ``complex``: ComplEx, ``Re(<e, w_q, conj(a)>)``, trained 1-vs-all with cross-entropy and
  the N3 regulariser (Lacroix et al., 2018), the strongest simple recipe on WordNet graphs;
- ``distmult``: the real-valued special case, ``<e, w_q, a>``.

Usage::

    from kgt5mm.data import load_graph
    from kgt5mm.baselines import KGEConfig, train_kge, evaluate_kge

    kg = load_graph("wn9_img")
    model = train_kge(kg, KGEConfig(model="complex", dim=256, epochs=60))
    metrics = evaluate_kge(model, kg, split="test").metrics
    print(metrics["both.realistic.mrr"])

The benchmark ``benchmarks/bench_kge_baseline.py`` runs this on the three benchmarks.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from kgt5mm.errors import ConfigError
from kgt5mm.evaluation.metrics import compute_metrics
from kgt5mm.evaluation.ranks import Ranks, filter_mask, rank_from_scores

__all__ = ["KGEConfig", "KGEModel", "KGEResult", "train_kge", "evaluate_kge"]

logger = logging.getLogger(__name__)

KGEModelName = Literal["complex", "distmult"]


@dataclass
class KGEConfig:
    """Hyperparameters of a KGE baseline (defaults: a CPU-friendly ComplEx)."""

    model: KGEModelName = field(default="complex", metadata={"help": "complex or distmult"})
    dim: int = field(default=256, metadata={"help": "embedding size (complex: per real/imag part)"})
    epochs: int = field(default=60, metadata={"help": "passes over the train queries"})
    batch_size: int = field(default=512, metadata={"help": "queries per step (1-vs-all)"})
    lr: float = field(default=0.1, metadata={"help": "Adagrad learning rate"})
    regularization: float = field(default=0.05, metadata={"help": "N3 regulariser weight"})
    init_scale: float = field(default=1e-3, metadata={"help": "std of the initial embeddings"})
    eval_every: int = field(default=10, metadata={"help": "validate every N epochs (0: never)"})
    eval_batch_size: int = field(default=256, metadata={"help": "queries per scoring batch"})
    seed: int = field(default=0, metadata={"help": "seed of initialisation and batch order"})

    def __post_init__(self) -> None:
        if self.model not in ("complex", "distmult"):
            raise ConfigError(f"KGEConfig.model must be complex or distmult, not {self.model!r}")
        for name in ("dim", "epochs", "batch_size", "eval_batch_size"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"KGEConfig.{name} must be positive, not {getattr(self, name)!r}")
        if self.lr <= 0:
            raise ConfigError(f"KGEConfig.lr must be positive, not {self.lr!r}")


class KGEModel(nn.Module):
    """Entity and query-relation embeddings with a 1-vs-all scoring function.

    :param num_entities: ``E``
    :param num_query_relations: ``2R`` (reciprocal relations)
    """

    def __init__(self, num_entities: int, num_query_relations: int, config: KGEConfig):
        super().__init__()
        self.config = config
        width = config.dim if config.model == "distmult" else 2 * config.dim
        self.entity = nn.Embedding(num_entities, width)
        self.relation = nn.Embedding(num_query_relations, width)
        nn.init.normal_(self.entity.weight, std=config.init_scale)
        nn.init.normal_(self.relation.weight, std=config.init_scale)

    def num_parameters(self) -> int:
        """Number of trainable parameters (entity and relation tables)."""
        return sum(p.numel() for p in self.parameters())

    def score_all(self, entities: torch.Tensor, query_relations: torch.Tensor) -> torch.Tensor:
        """Scores of every entity as the answer: ``(B,) x (B,) -> (B, E)``."""
        e, w = self.entity(entities), self.relation(query_relations)
        table = self.entity.weight
        if self.config.model == "distmult":
            return (e * w) @ table.T
        d = self.config.dim
        e_re, e_im = e[:, :d], e[:, d:]
        t_re, t_im = table[:, :d], table[:, d:]
        w_re, w_im = w[:, :d], w[:, d:]
        q_re = e_re * w_re - e_im * w_im  # (e * w), complex product
        q_im = e_re * w_im + e_im * w_re
        return q_re @ t_re.T + q_im @ t_im.T  # Re(<e * w, conj(a)>)

    def n3(self, entities: torch.Tensor, query_relations: torch.Tensor, answers: torch.Tensor) -> torch.Tensor:
        """N3 regulariser: mean over the batch of the cubed moduli of the three factors."""
        factors = [self.entity(entities), self.relation(query_relations), self.entity(answers)]
        if self.config.model == "distmult":
            return sum(f.abs().pow(3).sum() for f in factors) / len(entities)
        d = self.config.dim
        return sum(
            torch.sqrt(f[:, :d] ** 2 + f[:, d:] ** 2 + 1e-12).pow(3).sum() for f in factors
        ) / len(entities)


@dataclass
class KGEResult:
    """Ranks and metrics of one evaluation (metric keys as in :mod:`kgt5mm.evaluation`)."""

    ranks: Ranks
    metrics: dict[str, float]
    seconds: float


@torch.no_grad()
def evaluate_kge(model: KGEModel, kg, *, split: str = "test", queries: np.ndarray | None = None,
                 batch_size: int | None = None) -> KGEResult:
    """Filtered ranks of every query of ``split`` (both directions) under the project protocol.

    :param queries: ``(n, 3)`` ``(entity, query_relation, answer)``; default ``kg.queries(split)``
    """
    start = time.perf_counter()
    model.eval()
    queries = kg.queries(split) if queries is None else np.asarray(queries, dtype=np.int64)
    size = batch_size or model.config.eval_batch_size
    parts = []
    for lo in range(0, len(queries), size):
        batch = queries[lo : lo + size]
        t = torch.as_tensor(batch)
        scores = model.score_all(t[:, 0], t[:, 1])
        mask = filter_mask(batch, kg.filter_index, kg.num_entities)
        parts.append(rank_from_scores(scores, t[:, 2], mask, query_relations=batch[:, 1]))
    ranks = Ranks.concatenate(parts)
    metrics = compute_metrics(ranks, num_relations=kg.num_relations)
    return KGEResult(ranks=ranks, metrics=metrics, seconds=time.perf_counter() - start)


def train_kge(kg, config: KGEConfig | None = None, *, progress: bool = True) -> KGEModel:
    """Train a KGE baseline on ``kg``'s train split; keep the epoch with the best valid MRR.

    Every train triple gives two 1-vs-all examples, ``(h, r, ?) -> t`` and
    ``(t, r + R, ?) -> h``. Validation (realistic filtered MRR on the full valid split, both
    directions) runs every ``config.eval_every`` epochs; the best parameters are restored.
    """
    config = config or KGEConfig()
    generator = torch.Generator().manual_seed(config.seed)
    torch.manual_seed(config.seed)
    model = KGEModel(kg.num_entities, kg.num_query_relations, config)
    optimizer = torch.optim.Adagrad(model.parameters(), lr=config.lr)
    train = torch.as_tensor(kg.queries("train"))
    logger.info("KGE %s: %d parameters, %d train queries", config.model, model.num_parameters(), len(train))
    best_mrr, best_state, best_epoch = -1.0, None, 0
    bar = tqdm(range(1, config.epochs + 1), desc=f"kge {config.model}", disable=not progress)
    for epoch in bar:
        model.train()
        order = torch.randperm(len(train), generator=generator)
        total = 0.0
        for lo in range(0, len(train), config.batch_size):
            batch = train[order[lo : lo + config.batch_size]]
            scores = model.score_all(batch[:, 0], batch[:, 1])
            loss = nn.functional.cross_entropy(scores, batch[:, 2])
            if config.regularization > 0:
                loss = loss + config.regularization * model.n3(batch[:, 0], batch[:, 1], batch[:, 2])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += loss.item() * len(batch)
        postfix = {"loss": f"{total / len(train):.4f}"}
        if config.eval_every and (epoch % config.eval_every == 0 or epoch == config.epochs):
            mrr = evaluate_kge(model, kg, split="valid").metrics["both.realistic.mrr"]
            postfix["valid_mrr"] = f"{mrr:.4f}"
            if mrr > best_mrr:
                best_mrr, best_epoch = mrr, epoch
                best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        bar.set_postfix(postfix)
    if best_state is not None:
        model.load_state_dict(best_state)
        logger.info("KGE %s: best valid MRR %.4f at epoch %d", config.model, best_mrr, best_epoch)
    model.best_epoch = best_epoch  # type: ignore[attr-defined]
    model.best_valid_mrr = best_mrr  # type: ignore[attr-defined]
    return model

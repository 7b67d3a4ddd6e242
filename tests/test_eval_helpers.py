"""Shared setup of the decoding / evaluation / hub tests: a tiny graph and a tiny trained model.

Imported by ``tests/test_beam*.py``, ``tests/test_eval*.py``, ``tests/test_hub*.py`` and
``tests/test_predict*.py`` (pytest puts ``tests/`` on ``sys.path``); cached per process so
the model is trained once per test session. The model is trained a few dozen steps on the
real ``wn9_img_tiny`` subgraph so that its scores are far from uniform.
"""

from __future__ import annotations

import contextlib
import functools

import numpy as np
import torch

__all__ = ["TinySetup", "one_thread", "tiny_setup", "train_tiny"]


class TinySetup:
    """kg, tokenizer, builder, trained model and context config of the tiny test setup."""

    def __init__(self, kg, tokenizer, builder, model, context_config):
        self.kg = kg
        self.tokenizer = tokenizer
        self.builder = builder
        self.model = model
        self.context_config = context_config


def train_tiny(model, tokenizer, builder, kg, *, steps: int, seed: int = 0, lr: float = 5e-3):
    """A few AdamW steps of teacher-forced training on the train queries."""
    from kgt5mm.modeling import encode_targets

    torch.manual_seed(seed)
    queries = kg.queries("train")
    sources = builder.build_many(queries)
    targets = encode_targets(tokenizer, kg.entity_names)
    rng = np.random.default_rng(seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr)
    encoded = tokenizer(sources)["input_ids"]
    model.train()
    for _ in range(steps):
        idx = rng.choice(len(queries), size=16, replace=False)
        enc = tokenizer.pad({"input_ids": [encoded[i] for i in idx]}, return_tensors="pt")
        labels = [targets[queries[i, 2]] for i in idx]
        width = max(len(x) for x in labels)
        lab = torch.full((len(idx), width), -100, dtype=torch.long)
        for j, x in enumerate(labels):
            lab[j, : len(x)] = torch.tensor(x)
        loss = model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"], labels=lab).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    return model


@functools.lru_cache(maxsize=1)
def tiny_setup(steps: int = 30) -> TinySetup:
    """The cached tiny setup (wn9_img_tiny, 1k SentencePiece vocab, 'tiny' T5 trained briefly)."""
    from kgt5mm.context import ContextBuilder, ContextConfig
    from kgt5mm.data import load_graph
    from kgt5mm.modeling import ModelConfig, TokenizerConfig, build_model, train_tokenizer

    torch.manual_seed(0)
    kg = load_graph("wn9_img_tiny")
    tokenizer = train_tokenizer(kg, config=TokenizerConfig(vocab_size=1000))
    context_config = ContextConfig(budget_tokens=48)
    builder = ContextBuilder(
        kg, context_config,
        count_tokens=lambda s: len(tokenizer(s, add_special_tokens=False)["input_ids"]),
    )
    model = build_model(ModelConfig(size="tiny", dropout_rate=0.0), tokenizer=tokenizer)
    train_tiny(model, tokenizer, builder, kg, steps=steps)
    return TinySetup(kg, tokenizer, builder, model, context_config)


@contextlib.contextmanager
def one_thread():
    """Run torch on one thread (the 2 shared CPU cores are oversubscribed by parallel work)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)

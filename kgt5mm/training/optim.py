"""Optimizer (AdamW or Adafactor) and warm-up learning-rate schedule."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from kgt5mm.config import TrainConfig

__all__ = ["build_optimizer", "build_scheduler"]

_NO_DECAY = ("bias", "layer_norm", "layernorm", "norm.weight")


def build_optimizer(model: torch.nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    """AdamW (decoupled weight decay, none on norms and biases) or Adafactor at ``config.lr``.

    Only parameters with ``requires_grad`` (all of them, or the LoRA adapters) are optimized.
    """
    import torch

    decay, no_decay = [], []
    for name, parameter in model.named_parameters():
        if not parameter.requires_grad:
            continue
        (no_decay if any(k in name.lower() for k in _NO_DECAY) else decay).append(parameter)
    groups = [{"params": decay, "weight_decay": config.weight_decay},
              {"params": no_decay, "weight_decay": 0.0}]
    if config.optimizer == "adafactor":
        from transformers.optimization import Adafactor

        return Adafactor(groups, lr=config.lr, scale_parameter=False, relative_step=False,
                         warmup_init=False)
    return torch.optim.AdamW(groups, lr=config.lr, betas=tuple(config.adam_betas))


def build_scheduler(optimizer: torch.optim.Optimizer, config: TrainConfig, *, total_steps: int):
    """Linear warm-up over ``config.warmup_steps`` then the ``config.lr_schedule`` decay."""
    from transformers import get_scheduler

    name = {"linear": "linear", "cosine": "cosine", "constant": "constant_with_warmup",
            "inverse_sqrt": "inverse_sqrt"}[config.lr_schedule]
    warmup = min(config.warmup_steps, max(total_steps - 1, 0))
    return get_scheduler(name, optimizer, num_warmup_steps=warmup, num_training_steps=total_steps)

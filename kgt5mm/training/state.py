"""The loop's own state (kept apart from the config), saved with every resumable checkpoint."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["TrainState"]


@dataclass
class TrainState:
    """Where the loop stands; ``accelerator.save_state`` stores it through ``state_dict``.

    :ivar global_step: optimizer steps done
    :ivar epoch: current epoch (0-based)
    :ivar batch_in_epoch: this process's batches of ``epoch`` already consumed
    :ivar examples_seen: training examples seen over all processes
    :ivar best_metric: best validation value of ``train.metric`` so far
    :ivar best_step: step of ``best_metric``
    :ivar evals_without_improvement: validations since the best one (early stopping)
    :ivar train_seconds: wall time spent in training steps (over all resumed segments)
    :ivar stopped_early: the patience ran out
    :ivar last_eval_step: step of the latest validation (``None`` before the first)
    :ivar num_processes: processes of the run (batches are planned per process, so a resume
        must use the same number)
    """

    global_step: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0
    examples_seen: int = 0
    best_metric: float = -math.inf
    best_step: int | None = None
    evals_without_improvement: int = 0
    train_seconds: float = 0.0
    stopped_early: bool = False
    last_eval_step: int | None = None
    num_processes: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def state_dict(self) -> dict[str, Any]:
        """Plain dict for ``accelerator.save_state`` (via ``register_for_checkpointing``)."""
        return asdict(self)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the fields written by :meth:`state_dict`."""
        for key, value in state.items():
            if hasattr(self, key):
                setattr(self, key, value)

    def record_validation(self, value: float, *, step: int) -> bool:
        """Register a validation result; return whether it is a new best."""
        self.last_eval_step = step
        if value > self.best_metric:
            self.best_metric, self.best_step = float(value), step
            self.evals_without_improvement = 0
            return True
        self.evals_without_improvement += 1
        return False

    def forget_best(self) -> None:
        """Drop the best-so-far record (its weights are gone); early stopping counts afresh."""
        self.best_metric, self.best_step = -math.inf, None
        self.evals_without_improvement = 0

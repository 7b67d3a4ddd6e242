"""The Accelerate training loop: ``train(config)`` behind ``train.py`` and ``kgt5mm train``.

::

    from kgt5mm.config import Config
    from kgt5mm.training import train
    result = train(Config.from_yaml("run_scripts/wn9_img_cpu.yaml"), resume="auto")
"""

from kgt5mm.training.data import (
    IGNORE_INDEX,
    EpochData,
    collate,
    example_weighted_loss,
    length_key,
    num_planned_batches,
    padding_share,
    plan_batches,
    shard_batches,
    train_queries,
)
from kgt5mm.training.loop import (
    STATES_DIR,
    Trainer,
    TrainResult,
    latest_state,
    make_accelerator,
    train,
)
from kgt5mm.training.optim import build_optimizer, build_scheduler
from kgt5mm.training.state import TrainState
from kgt5mm.training.tracking import (
    MetricsLog,
    plot_curves,
    plot_validation_runs,
    read_records,
    validation_curve,
)

__all__ = [
    "IGNORE_INDEX",
    "EpochData",
    "collate",
    "example_weighted_loss",
    "length_key",
    "num_planned_batches",
    "padding_share",
    "plan_batches",
    "shard_batches",
    "train_queries",
    "STATES_DIR",
    "Trainer",
    "TrainResult",
    "latest_state",
    "make_accelerator",
    "train",
    "build_optimizer",
    "build_scheduler",
    "TrainState",
    "MetricsLog",
    "plot_curves",
    "plot_validation_runs",
    "read_records",
    "validation_curve",
]

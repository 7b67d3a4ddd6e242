"""``kgt5mm train``: train a link predictor from a YAML config (same as ``train.py``).

::

    kgt5mm train --config run_scripts/wn9_img_cpu.yaml train.lr=5e-4 model.size=tiny
    kgt5mm train --config run_scripts/wn9_img_cpu.yaml --resume          # latest state
    kgt5mm train --help-config                                           # every field
    torchrun --standalone --nproc_per_node 2 train.py --config ...        # 2 CPU processes (gloo)
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

__all__ = ["register", "add_arguments", "run", "handler"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The arguments shared by ``train.py`` and ``kgt5mm train``."""
    parser.add_argument("--config", help="YAML run config (see run_scripts/)")
    parser.add_argument("overrides", nargs="*", metavar="section.field=value",
                        help="config overrides, e.g. train.lr=3e-4 model.lora.r=16")
    parser.add_argument("--resume", nargs="?", const="auto", default=None, metavar="STATE",
                        help="continue from the run's latest saved state (or the given "
                             "states/step_N folder); a fresh start when there is none")
    parser.add_argument("--stop-after-steps", type=int, default=None, metavar="N",
                        help="stop with a resumable state after N optimizer steps (schedule unchanged)")
    parser.add_argument("--help-config", action="store_true", help="list every config field and exit")
    parser.add_argument("--print-config", action="store_true", help="print the resolved config and exit")


def run(args: argparse.Namespace) -> int:
    """Load and validate the config, train, print the test metrics; returns the exit code."""
    from kgt5mm.config import Config, config_help
    from kgt5mm.errors import ConfigError

    if args.help_config:
        print("\n".join(config_help()))
        return 0
    if args.resume is not None and "=" in args.resume and not Path(args.resume).exists():
        # `--resume train.lr=5e-4`: argparse gave the override to --resume's optional value
        args.overrides = [args.resume, *args.overrides]
        args.resume = "auto"
    if args.stop_after_steps is not None and args.stop_after_steps < 1:
        raise ConfigError(f"--stop-after-steps must be >= 1, got {args.stop_after_steps}")
    config = Config.from_yaml(args.config, args.overrides) if args.config else Config.from_dict({}, args.overrides)
    if args.print_config:
        print(config.to_yaml(), end="")
        return 0
    from accelerate.logging import get_logger  # noqa: F401  (configures process-aware logging)

    from kgt5mm.training import make_accelerator, train

    accelerator = make_accelerator(config)
    if not accelerator.is_main_process:  # only the main process talks at INFO level
        logging.getLogger("kgt5mm").setLevel(logging.WARNING)
    result = train(config, accelerator=accelerator, resume=args.resume, stop_after_steps=args.stop_after_steps)
    if accelerator.is_main_process:
        print(f"run folder: {result.run_dir}  steps: {result.global_step}  "
              f"train time: {result.train_seconds / 60:.1f} min  "
              f"wall throughput: {result.examples_per_second:.1f} examples/s  "
              f"padding: {100 * result.padding_share:.1f}%")
        if result.best_step is not None:
            print(f"best validation {config.train.metric}: {result.best_metric:.4f} (step {result.best_step})")
        if result.test_metrics:
            m = result.test_metrics
            print(f"test ({int(m.get('num_queries', 0))} queries): MRR {m['both.realistic.mrr']:.4f}  "
                  f"Hits@1 {m['both.realistic.hits_at_1']:.4f}  Hits@3 {m['both.realistic.hits_at_3']:.4f}  "
                  f"Hits@10 {m['both.realistic.hits_at_10']:.4f}  in-beam {m['both.in_beam_share']:.3f}")
        if result.model_dir is not None:
            print(f"model folder: {result.model_dir}")
        if not result.finished:
            print(f"stopped after {result.global_step} steps; continue with --resume", file=sys.stderr)
    return 0


def handler(args: argparse.Namespace) -> int:
    """``kgt5mm train`` handler."""
    return run(args)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``train`` command."""
    parser = subparsers.add_parser(
        "train", help="train a link predictor (same as train.py)",
        description="Train a seq2seq link predictor from a YAML config with key=value overrides. "
                    "Run it under `accelerate launch` for several processes or GPUs.")
    add_arguments(parser)
    parser.set_defaults(handler=handler)

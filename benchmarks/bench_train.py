"""Training-loop overhead and padding share.

Throughput of the full training loop (``Trainer.fit``: accumulate, clipping, scheduler, logging,
progress bar, per-epoch source building) against a bare forward/backward/step loop over the
same pre-tokenized batches, same model, precision and threads, measured in one run
(alternating rounds of loop and bare passes over the same batches, so load changes on a
shared machine hit both; the median ratio over rounds is the figure)::

    python benchmarks/bench_train.py --config run_scripts/wn9_img_cpu.yaml --steps 60
    python benchmarks/bench_train.py --config run_scripts/mkg_w_cpu.yaml \\
        --data-dir /work/shared/data --padding-only          # padding share on MKG-W

Each run writes a JSON record under benchmarks/results/ (benchmarks/_record.py).
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _record import write_record  # noqa: E402


def _bare(trainer, batches) -> float:
    """Examples/s of forward + backward + optimizer step over ``batches`` (no loop machinery)."""
    import torch

    acc, model = trainer.accelerator, trainer.model
    optimizer = trainer.optimizer
    model.train()
    examples = 0
    start = time.perf_counter()
    for batch in batches:
        inputs = trainer._tensors(batch)
        loss = model(**inputs).loss
        acc.backward(loss)
        optimizer.step()
        optimizer.zero_grad()
        examples += len(batch)
    torch.cuda.synchronize() if torch.cuda.is_available() else None
    return examples / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default="run_scripts/wn9_img_cpu.yaml")
    parser.add_argument("overrides", nargs="*", help="config overrides (section.field=value)")
    parser.add_argument("--data-dir", default=None, help="folder of mkg_w/, mkg_y/ (../shared/data)")
    parser.add_argument("--steps", type=int, default=60, help="optimizer steps of the full loop in all")
    parser.add_argument("--rounds", type=int, default=3,
                        help="alternate loop and bare passes this many times (contention noise)")
    parser.add_argument("--padding-only", action="store_true",
                        help="only build epoch 0 and report the padding share with/without grouping")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)

    import numpy as np

    from kgt5mm.config import Config
    from kgt5mm.training import Trainer, length_key, padding_share, plan_batches

    overrides = list(args.overrides)
    if args.data_dir:
        overrides.append(f"data.data_dir={args.data_dir}")
    with tempfile.TemporaryDirectory() as tmp:
        overrides += [f"train.output_dir={tmp}", "train.eval_every_steps=null", "train.save_every_steps=null",
                      "train.test_at_end=false", "train.save_model=false", "train.tensorboard=false",
                      "train.log_samples=0", "train.warmup_steps=0",
                      "train.log_every_steps=10"]
        config = Config.from_yaml(args.config, overrides)
        trainer = Trainer(config)
        tc = config.train
        data = trainer._epoch(0)
        src = np.array([len(s) for s in data.source_ids])
        lab = np.array([len(t) for t in data.label_ids])
        plain = plan_batches(length_key(src, lab), batch_size=tc.batch_size, seed=tc.seed, epoch=0, length_grouping=False)
        grouped = plan_batches(length_key(src, lab), batch_size=tc.batch_size, seed=tc.seed, epoch=0,
                               group_size=tc.group_size, length_grouping=True)
        figures = {
            "examples": len(src), "batch_size": tc.batch_size, "group_size": tc.group_size,
            "source_tokens_mean": float(src.mean()), "source_tokens_max": int(src.max()),
            "padding_share_grouped": padding_share(src, lab, grouped),
            "padding_share_shuffled": padding_share(src, lab, plain),
        }
        if not args.padding_only:
            import torch

            trainer._epoch_data, trainer._epoch_data_epoch = data, 0
            build_start = time.perf_counter()
            trainer._epoch(1)
            build_seconds = time.perf_counter() - build_start
            trainer.config.train.max_steps = None
            per = args.steps // args.rounds
            _bare(trainer, data.batches[:3])  # warm-up (allocator, first-call caches)
            bare, loop = [], []
            for round_ in range(args.rounds):
                # the full loop consumes steps [round*per, (round+1)*per) of epoch 0; the bare
                # loop then runs over exactly those batches (same shapes, same model)
                result = trainer.fit(stop_after_steps=(round_ + 1) * per)
                loop.append(result.examples_per_second)
                if tc.num_threads is not None:  # fit() restored the caller's thread count
                    torch.set_num_threads(tc.num_threads)
                micro = per * tc.gradient_accumulation_steps
                bare.append(_bare(trainer, data.batches[round_ * micro:(round_ + 1) * micro]))
            ratios = [a / b for a, b in zip(loop, bare, strict=True)]
            figures.update({
                "steps": per * args.rounds, "rounds": args.rounds, "mixed_precision": tc.mixed_precision,
                "num_threads": tc.num_threads,
                "bare_examples_per_second": [round(v, 2) for v in bare],
                "loop_examples_per_second": [round(v, 2) for v in loop],
                "loop_vs_bare_per_round": [round(v, 4) for v in ratios],
                "loop_vs_bare_median": round(float(np.median(ratios)), 4),
                "loop_vs_bare_total": round(sum(loop) / sum(bare), 4),
                "epoch_source_build_seconds": round(build_seconds, 2),
                "epoch_build_share_at_bare_speed": round(
                    build_seconds / (build_seconds + len(src) / float(np.mean(bare))), 4),
            })
    from kgt5mm.modeling import count_parameters

    trainable, total = count_parameters(trainer.accelerator.unwrap_model(trainer.model))
    name = config.model.pretrained or config.model.size
    path = write_record("bench_train", dataset=trainer.kg.name, split="train",
                        model_size=f"{name} ({total / 1e6:.2f}M)", figures=figures,
                        extra={"overrides": overrides[:-9]})
    for key, value in figures.items():
        print(f"{key}: {value}")
    print(f"record: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Train a kgt5mm link predictor: the thin entry point over :mod:`kgt5mm.training`.

::

    python train.py --config run_scripts/wn9_img_cpu.yaml                 # one process
    python train.py --config run_scripts/wn9_img_cpu.yaml train.lr=5e-4   # overrides
    python train.py --config run_scripts/wn9_img_cpu.yaml --resume        # continue a run
    accelerate launch train.py --config run_scripts/wn9_img_gpu.yaml      # GPUs / nodes
    torchrun --standalone --nproc_per_node 2 train.py --config run_scripts/wn9_img_tiny.yaml  # 2 CPU processes

The pipeline, each stage a named builder in the package:
config -> graph -> tokenizer -> context builder -> model -> optimizer / schedule ->
``accelerator.prepare`` -> loop (validation MRR, best checkpoint, save_state) -> test -> model folder.
"""

from __future__ import annotations

import argparse
import logging
import sys


def main(argv: list[str] | None = None) -> int:
    from kgt5mm.commands import close_process_group
    from kgt5mm.commands.train import add_arguments, run
    from kgt5mm.errors import KGT5MMError

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    parser.add_argument("-q", "--quiet", action="store_true", help="log warnings only")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    for noisy in ("accelerate.checkpointing", "accelerate.accelerator", "accelerate.utils.other",
                  "matplotlib", "httpx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        return run(args)
    except KGT5MMError as error:
        print(f"train.py: error: {error}", file=sys.stderr)
        return 2
    finally:
        close_process_group()


if __name__ == "__main__":
    sys.exit(main())

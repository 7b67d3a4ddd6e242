"""Captioning throughput (images/s) of the VLM stage, with a tiny random BLIP-2 by default.

Measures the three kinds of work of ``kgt5mm caption`` separately on the real sample photos of
WN9-IMG (repeated to ``--images`` items): the relevance filter (one generation step with
scores), entity descriptions and link captions (two photos side by side, greedy generation of
``--max-new-tokens`` tokens). Model loading and the first (warm-up) batch are not timed.

Run::

    python benchmarks/bench_caption.py                              # tiny BLIP-2, CPU
    python benchmarks/bench_caption.py --threads 1 --batch-size 8
    python benchmarks/bench_caption.py --model Salesforce/blip2-opt-2.7b --device cuda   # GPU
    python benchmarks/bench_caption.py --hidden 768 --layers 12 --image-size 224 --device cuda

``--hidden/--layers/--image-size`` size the random model built from configs (no download).
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _record import write_record  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None, help="VLM id or folder (default: build a tiny one)")
    parser.add_argument("--kind", default="blip2", choices=["blip2", "instructblip"],
                        help="architecture of the random model")
    parser.add_argument("--hidden", type=int, default=32, help="width of the random model")
    parser.add_argument("--layers", type=int, default=1, help="layers per tower of the random model")
    parser.add_argument("--image-size", type=int, default=32, help="vision input size of the random model")
    parser.add_argument("--images", type=int, default=64, help="items per kind")
    parser.add_argument("--batch-size", type=int, default=8, help="items per VLM call")
    parser.add_argument("--max-new-tokens", type=int, default=16, help="tokens per generated text")
    parser.add_argument("--device", default=None, help="cpu / cuda (default: cuda if available)")
    parser.add_argument("--dtype", default="auto", help="auto (bf16 on GPU), bf16, fp32")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    import torch

    from kgt5mm.data import load_graph
    from kgt5mm.vision.images import compose_side_by_side, load_image
    from kgt5mm.vision.vlm import VLM

    if args.threads:
        torch.set_num_threads(args.threads)
    kg = load_graph("wn9_img")
    photos = [(e, p) for e, paths in enumerate(kg.entity_images) for p in paths]
    with tempfile.TemporaryDirectory() as tmp:
        model = args.model
        if model is None:
            from kgt5mm.vision.tiny import save_tiny_vlm

            model = str(save_tiny_vlm(Path(tmp) / "vlm", kind=args.kind, hidden=args.hidden,
                                      layers=args.layers, image_size=args.image_size))
        vlm = VLM(model, device=args.device, dtype=args.dtype)
        params = sum(p.numel() for p in vlm.model.parameters())
        from kgt5mm.context import load_prompt

        relevance, description, link = (load_prompt(p) for p in
                                        ("relevance_filter", "entity_description", "link_caption"))
        items = [photos[i % len(photos)] for i in range(args.images)]
        figures = {"parameters": params, "device": str(vlm.device), "dtype": str(vlm.dtype),
                   "threads": torch.get_num_threads(), "batch_size": args.batch_size,
                   "max_new_tokens": args.max_new_tokens, "items": args.images}

        def run(name, make, call):
            batches = [items[i : i + args.batch_size] for i in range(0, len(items), args.batch_size)]
            prepared = [make(b) for b in batches]
            call(*prepared[0])  # warm-up, not timed
            images = 0
            start = time.perf_counter()
            for pictures, prompts, n_images in prepared:
                call(pictures, prompts)
                images += n_images
            seconds = time.perf_counter() - start
            if vlm.device.type == "cuda":
                torch.cuda.synchronize()
            figures[name] = {"images_per_s": round(images / seconds, 2),
                             "items_per_s": round(len(items) / seconds, 2), "seconds": round(seconds, 2)}
            print(f"{name}: {figures[name]}")

        def single(prompt, batch):
            pics = [load_image(p) for _, p in batch]
            return pics, [prompt.render(entity=kg.entity_names[e]) for e, _ in batch], len(batch)

        def pairs(batch):
            pics, prompts = [], []
            for i, (e, p) in enumerate(batch):
                e2, p2 = photos[(photos.index((e, p)) + 1 + i) % len(photos)]
                pics.append(compose_side_by_side([load_image(p), load_image(p2)]))
                prompts.append(link.render(entity=kg.entity_names[e], neighbour=kg.entity_names[e2],
                                           relation=kg.relation_texts[0]))
            return pics, prompts, 2 * len(batch)

        run("relevance", lambda b: single(relevance, b), lambda x, y, *_: vlm.yes_probability(x, y))
        run("description", lambda b: single(description, b),
            lambda x, y, *_: vlm.generate(x, y, max_new_tokens=args.max_new_tokens))
        run("link", pairs, lambda x, y, *_: vlm.generate(x, y, max_new_tokens=args.max_new_tokens))
    size = f"random {args.kind} hidden {args.hidden}, {args.layers} layer(s), {params:,} params" \
        if args.model is None else args.model
    path = write_record("bench_caption", dataset="wn9_img sample photos", split=None,
                        model_size=size, figures=figures)
    print(f"record: {path}")


if __name__ == "__main__":
    main()

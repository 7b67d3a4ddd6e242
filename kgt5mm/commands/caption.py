"""``kgt5mm caption``: turn a graph's entity images into cached VLM text.

::

    # any image-text-to-text VLM loadable by transformers (Hub id or local folder)
    kgt5mm caption wn9_img --model Salesforce/instructblip-flan-t5-xl --cache captions/wn9.jsonl
    # several GPUs: each process takes a disjoint shard, the main process merges
    accelerate launch --multi_gpu --num_processes 4 -m kgt5mm.cli caption wn9_img \
        --model ... --cache captions/wn9.jsonl
    torchrun --nproc_per_node 2 -m kgt5mm.cli caption ...   # also on CPU (gloo)
    # your own images: a TSV of entity<TAB>image path (relative to the TSV's folder)
    kgt5mm caption my_kg --data-dir data --images images.tsv --model ... --cache c.jsonl
    # precomputed text (ficha_vlm_desc_*, .tsv, .jsonl) into the same cache, no model needed
    kgt5mm caption mkg_y --data-dir ../shared/data --cache c.jsonl \\
        --import ../shared/data/mkg_y/ficha_vlm_desc_setting3.txt

The run prints counts (planned, cached, done, errors by reason, kept images) at the end and
exits 0 even when some images were missing or unreadable (they are recorded and counted).
"""

from __future__ import annotations

import argparse
from pathlib import Path

__all__ = ["register", "read_image_list"]


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``kgt5mm caption``."""
    from kgt5mm.vision.captioner import CAPTION_KINDS, DEFAULT_KINDS  # light: no torch at import

    p = subparsers.add_parser("caption", help="caption entity images with a VLM into a JSONL cache")
    p.add_argument("dataset", help="dataset name (wn9_img, wn9_img_tiny, mkg_w, ...) or folder")
    p.add_argument("--data-dir", default=None, help="folder holding the named datasets")
    p.add_argument("--cache", required=True, help="JSONL cache file (created or appended)")
    p.add_argument("--model", default=None, help="VLM Hub id or local folder (image-text-to-text)")
    p.add_argument("--images", default=None,
                   help="TSV entity<TAB>image path replacing the graph's images (entity: id or name)")
    p.add_argument("--kinds", nargs="+", default=list(DEFAULT_KINDS), choices=CAPTION_KINDS,
                   help="what to produce, run in dependency order (default: relevance description "
                        "link; 'summary' adds image-set summaries of link pairs)")
    p.add_argument("--threshold", type=float, default=0.5, help="keep an image when P(Yes) >= this")
    p.add_argument("--links-per-entity", type=int, default=5, help="link captions per entity")
    p.add_argument("--max-images-per-entity", type=int, default=2,
                   help="kept images composed for an entity description")
    p.add_argument("--batch-size", type=int, default=8, help="items per VLM call")
    p.add_argument("--max-new-tokens", type=int, default=48, help="generation length")
    p.add_argument("--tile-height", type=int, default=384, help="height of composed images")
    p.add_argument("--dtype", default="auto", help="auto (bf16 on GPU, fp32 on CPU), bf16, fp16, fp32")
    p.add_argument("--retry-errors", action="store_true", help="redo items recorded as errors")
    p.add_argument("--max-batches", type=int, default=None,
                   help="stop after this many batches (single process); rerun to continue")
    p.add_argument("--import", dest="import_files", nargs="+", default=None, metavar="FILE",
                   help="import precomputed text files into the cache instead of running a VLM")
    p.set_defaults(handler=_run)


def read_image_list(path: str | Path, kg) -> list[list[str]]:
    """Images per entity from a TSV ``entity<TAB>path`` (several lines per entity allowed).

    Entities by external id or unique name; relative paths are relative to the TSV's folder.
    Unknown entities or malformed lines are a :class:`~kgt5mm.errors.DataFormatError`; the image
    files themselves are checked later, by the captioner (missing ones are recorded, not fatal).
    """
    from kgt5mm.errors import DataFormatError

    path = Path(path)
    ids = {eid: i for i, eid in enumerate(kg.entity_ids)}
    images: list[list[str]] = [[] for _ in range(kg.num_entities)]
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        cols = line.split("\t")
        if len(cols) != 2:
            raise DataFormatError(path, number, "expected entity<TAB>image path", line[:80])
        entity, image = cols[0].strip(), cols[1].strip()
        if entity in ids:
            e = ids[entity]
        else:
            try:
                e = kg.entity_index(entity)
            except KeyError:
                raise DataFormatError(path, number, "unknown entity", entity) from None
        image_path = Path(image)
        if not image_path.is_absolute():
            image_path = path.parent / image_path
        images[e].append(str(image_path))
    return images


def _run(args: argparse.Namespace) -> int:
    from kgt5mm.context.captions import append_records, load_caption_file, read_cache, repair_cache
    from kgt5mm.data import load_graph
    from kgt5mm.errors import ConfigError

    kg = load_graph(args.dataset, data_dir=args.data_dir)
    if args.import_files:
        cache = Path(args.cache)
        repair_cache(cache)
        present = read_cache(cache).records
        total_new = 0
        for file in args.import_files:
            records = load_caption_file(file, kg)
            # new keys, and edited texts of imported keys (the last record of a key wins)
            new = [r for r in records if present.get(r.key) != r]
            append_records(cache, new)
            present.update({r.key: r for r in new})
            total_new += len(new)
            print(f"{file}: {len(records)} records, {len(new)} new or changed")
        print(f"{args.cache}: {total_new} records imported")
        return 0
    if not args.model:
        raise ConfigError("--model is required unless --import is given")
    if args.images:
        kg.entity_images = read_image_list(args.images, kg)

    from kgt5mm.vision.captioner import CaptionConfig, make_state, run_captioning

    config = CaptionConfig(
        model=args.model, cache=args.cache, kinds=tuple(args.kinds), threshold=args.threshold,
        links_per_entity=args.links_per_entity, max_images_per_entity=args.max_images_per_entity,
        batch_size=args.batch_size, max_new_tokens=args.max_new_tokens, tile_height=args.tile_height,
        dtype=args.dtype, retry_errors=args.retry_errors, max_batches=args.max_batches,
    )
    state = make_state()
    summary = run_captioning(kg, config, state=state)
    if state.is_main_process:
        for line in summary.lines():
            print(line)
    return 0

"""The captioning stage behind ``kgt5mm caption``: entity images -> cached VLM text.

Three kinds of work, in this order (each kind needs the previous one's results):

1. ``relevance``: for every (entity, image) the VLM answers a Yes/No question (prompt
   ``relevance_filter``); P(Yes) is stored and the image is kept when P(Yes) >= threshold.
2. ``description``: for every entity with kept images, a short description from up to
   ``max_images_per_entity`` of its most relevant kept images composed side by side
   (prompt ``entity_description``).
3. ``link``: for every entity with kept images, link-aware captions for up to
   ``links_per_entity`` (entity, neighbour) pairs of TRAIN edges, most relevant first: pairs whose
   neighbour has a kept image too (both images side by side, prompt ``link_caption``) before
   pairs whose neighbour has none (the entity's image only, prompt ``link_caption_one_image``);
   then by the neighbour's best P(Yes), then by how specific the edge's relation is (rarer first).
   An unordered pair is captioned once.
4. ``summary`` (optional, not in the default kinds): for the link pairs whose two entities both
   have kept images, one summary over up to ``max_images_per_entity`` images of each, composed
   side by side (prompt ``image_set_summary``).

The cache is JSONL (:mod:`kgt5mm.context.captions`): a rerun skips keys already present, each
batch is appended with one write + fsync, so a killed run loses at most the batch in flight, and
a truncated last line is cut before appending. Missing or unreadable images become ``error``
records with the reason and are counted; they never stop the run (``retry_errors`` retries them).

Several processes (``accelerate launch -m kgt5mm.cli caption ...``): each takes a disjoint
shard of every kind's pending items (``items[rank::world]``), writes ``<cache>.part-<rank>``,
and the main process merges the shards into the cache after each kind (leftover shards of a
killed run are merged at the next start), so there are no duplicates.
"""

from __future__ import annotations

import logging
import os
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kgt5mm.context.captions import CaptionRecord, append_records, read_cache, repair_cache
from kgt5mm.context.prompts import Prompt, load_prompt
from kgt5mm.errors import ConfigError, KGT5MMError
from kgt5mm.vision.images import ImageLoadError, compose_side_by_side, image_id, load_image

if TYPE_CHECKING:
    from kgt5mm.data import KnowledgeGraph
    from kgt5mm.vision.vlm import VLM

__all__ = ["CaptionConfig", "CaptionSummary", "WorkItem", "run_captioning", "plan_relevance", "plan_summaries", "DEFAULT_KINDS", "make_state",
           "plan_descriptions", "plan_links", "CAPTION_KINDS"]

logger = logging.getLogger(__name__)

#: kinds the captioner produces, in dependency order
CAPTION_KINDS: tuple[str, ...] = ("relevance", "description", "link", "summary")
#: kinds produced by default (the image-set summary is optional)
DEFAULT_KINDS: tuple[str, ...] = ("relevance", "description", "link")


@dataclass
class CaptionConfig:
    """Settings of a captioning run (the CLI flags of ``kgt5mm caption``)."""

    model: str = field(metadata={"help": "VLM Hub id or local folder (image-text-to-text)"})
    cache: str = field(metadata={"help": "JSONL cache file (created / appended)"})
    kinds: tuple[str, ...] = field(
        default=DEFAULT_KINDS,
        metadata={"help": "kinds to produce: relevance, description, link, summary (optional)"})
    threshold: float = field(default=0.5, metadata={"help": "keep an image when P(Yes) >= this"})
    links_per_entity: int = field(default=5, metadata={"help": "link captions per entity"})
    max_images_per_entity: int = field(
        default=2, metadata={"help": "kept images composed for an entity description"})
    batch_size: int = field(default=8, metadata={"help": "items per VLM call"})
    max_new_tokens: int = field(default=48, metadata={"help": "generation length of texts"})
    tile_height: int = field(default=384, metadata={"help": "height of composed image tiles"})
    dtype: str = field(default="auto", metadata={"help": "auto (bf16 on GPU), bf16, fp16, fp32"})
    retry_errors: bool = field(default=False, metadata={"help": "redo items recorded as errors"})
    max_batches: int | None = field(
        default=None, metadata={"help": "stop after this many batches in total (incremental runs)"})
    prompts: dict[str, str] = field(default_factory=lambda: {
        "relevance": "relevance_filter", "description": "entity_description",
        "link": "link_caption", "link_one_image": "link_caption_one_image",
        "summary": "image_set_summary"},
        metadata={"help": "prompt id per use"})

    def validate(self) -> None:
        """Raise :class:`ConfigError` on invalid settings."""
        unknown = [k for k in self.kinds if k not in CAPTION_KINDS]
        if unknown:
            raise ConfigError(f"unknown caption kinds {unknown}; known: {CAPTION_KINDS}")
        if not 0.0 <= self.threshold <= 1.0:
            raise ConfigError(f"threshold must be in [0, 1], got {self.threshold}")
        for name in ("links_per_entity", "max_images_per_entity", "batch_size", "max_new_tokens"):
            if getattr(self, name) < (0 if name == "links_per_entity" else 1):
                raise ConfigError(f"{name} must be positive, got {getattr(self, name)}")


@dataclass
class WorkItem:
    """One VLM call's worth of work: a record key plus what is needed to compute it.

    :ivar record: the record to fill in (key fields set)
    :ivar image_paths: images to load (composed side by side when several)
    :ivar prompt_text: the rendered prompt
    """

    record: CaptionRecord
    image_paths: tuple[str, ...]
    prompt_text: str


@dataclass
class CaptionSummary:
    """Counts of a run, per kind: planned, skipped (cached), done, errors by reason, kept."""

    planned: Counter = field(default_factory=Counter)
    skipped: Counter = field(default_factory=Counter)
    done: Counter = field(default_factory=Counter)
    errors: Counter = field(default_factory=Counter)
    cached_errors: Counter = field(default_factory=Counter)
    kept_images: int = 0
    filtered_images: int = 0
    truncated_lines: int = 0
    images_processed: int = 0
    seconds: float = 0.0
    stopped_early: bool = False

    def lines(self) -> list[str]:
        """Human-readable summary lines."""
        out = []
        for kind in CAPTION_KINDS:
            if self.planned[kind] or self.skipped[kind]:
                out.append(f"{kind}: {self.planned[kind]} items, {self.skipped[kind]} already cached, "
                           f"{self.done[kind]} done")
        out.append(f"relevance filter: {self.kept_images} images kept, {self.filtered_images} filtered out")
        if self.errors:
            out.append("errors: " + ", ".join(f"{k}: {v}" for k, v in sorted(self.errors.items())))
        else:
            out.append("errors: none")
        if self.cached_errors:
            out.append("errors recorded by earlier runs (skipped; --retry-errors redoes them): "
                       + ", ".join(f"{k}: {v}" for k, v in sorted(self.cached_errors.items())))
        if self.truncated_lines:
            out.append(f"cache repair: {self.truncated_lines} truncated last line(s) cut")
        rate = self.images_processed / self.seconds if self.seconds > 0 else 0.0
        out.append(f"{self.images_processed} images through the VLM in {self.seconds:.1f} s "
                   f"({rate:.2f} images/s)")
        if self.stopped_early:
            out.append("stopped early (max_batches); rerun to continue")
        return out


# ---------------------------------------------------------------------------- planning
def _base(kind: str, entities: Sequence[str], images: Sequence[str], model: str, prompt: Prompt,
          **extra: Any) -> CaptionRecord:
    return CaptionRecord(kind=kind, entities=tuple(entities), images=tuple(images), model=model,
                         prompt_id=prompt.id, prompt_version=prompt.version, **extra)


def plan_relevance(kg: KnowledgeGraph, *, model: str, prompt: Prompt,
                   entities: Sequence[int] | None = None) -> list[WorkItem]:
    """One item per (entity, image) of the graph (or of ``entities``)."""
    images = kg.entity_images or [[] for _ in range(kg.num_entities)]
    chosen = range(kg.num_entities) if entities is None else entities
    items = []
    for e in chosen:
        name = kg.entity_names[e]
        seen: dict[str, str] = {}
        for path in images[e]:
            key = image_id(path)
            if seen.setdefault(key, str(path)) != str(path):
                # cache records name an image by its file name (see image_id): two would share them
                raise ConfigError(
                    f"entity {kg.entity_ids[e]!r} ({name}) has two images named {key!r}: "
                    f"{seen[key]} and {path}; caption caches key images by file name, rename one")
            record = _base("relevance", [kg.entity_ids[e]], [key], model, prompt)
            items.append(WorkItem(record, (str(path),), prompt.render(entity=name)))
    return items


def kept_images(kg: KnowledgeGraph, records: Sequence[CaptionRecord], *, model: str,
                prompt: Prompt, threshold: float) -> dict[int, list[tuple[float, str]]]:
    """Kept images per entity: ``[(p_yes, path), ...]`` sorted by P(Yes) descending."""
    index = {eid: i for i, eid in enumerate(kg.entity_ids)}
    p_by_key: dict[tuple[int, str], float] = {}
    for r in records:
        if (r.kind == "relevance" and r.status == "ok" and r.model == model and r.prompt_id == prompt.id
                and r.prompt_version == prompt.version and r.p_yes is not None and r.entities[0] in index):
            p_by_key[(index[r.entities[0]], r.images[0])] = float(r.p_yes)
    kept: dict[int, list[tuple[float, str]]] = {}
    images = kg.entity_images or []
    for e, paths in enumerate(images):
        scored = [(p_by_key[(e, image_id(p))], str(p)) for p in paths
                  if (e, image_id(p)) in p_by_key and p_by_key[(e, image_id(p))] >= threshold]
        if scored:
            kept[e] = sorted(scored, key=lambda x: (-x[0], x[1]))
    return kept


def plan_descriptions(kg: KnowledgeGraph, kept: dict[int, list[tuple[float, str]]], *, model: str,
                      prompt: Prompt, max_images: int) -> list[WorkItem]:
    """One item per entity with kept images: its best ``max_images`` images composed."""
    items = []
    for e in sorted(kept):
        paths = [p for _, p in kept[e][:max_images]]
        record = _base("description", [kg.entity_ids[e]], [image_id(p) for p in paths], model, prompt)
        items.append(WorkItem(record, tuple(paths), prompt.render(entity=kg.entity_names[e])))
    return items


def plan_links(kg: KnowledgeGraph, kept: dict[int, list[tuple[float, str]]], *, model: str,
               prompt_two: Prompt, prompt_one: Prompt, per_entity: int,
               sources: Sequence[int] | None = None) -> list[WorkItem]:
    """Up to ``per_entity`` (entity, neighbour) pairs of train edges per entity with kept images.

    ``sources`` restricts the entities whose pairs are planned (neighbours are unrestricted).

    Order per entity: neighbour has a kept image too; neighbour's best P(Yes); rarer relation;
    neighbour id. Each unordered pair is captioned once (by the first entity, in id order, that
    selects it; it then counts towards that entity's quota only).
    """
    import numpy as np

    nbr = kg.neighbours
    relation_freq = np.bincount(np.asarray(nbr.query_relation), minlength=kg.num_query_relations)
    done_pairs: set[frozenset[int]] = set()
    items = []
    allowed = None if sources is None else set(sources)
    for e in sorted(kept):
        if allowed is not None and e not in allowed:
            continue
        qrs, nbs, _ = nbr.of(e)
        best_edge: dict[int, int] = {}
        for q, n in zip(qrs.tolist(), nbs.tolist(), strict=True):
            if n == e:
                continue
            if n not in best_edge or relation_freq[q] < relation_freq[best_edge[n]]:
                best_edge[n] = q
        ranked = sorted(best_edge, key=lambda n: (
            n not in kept, -(kept[n][0][0] if n in kept else 0.0), int(relation_freq[best_edge[n]]), n))
        chosen = 0
        for n in ranked:
            if chosen >= per_entity:
                break
            pair = frozenset((e, n))
            if pair in done_pairs:
                continue
            done_pairs.add(pair)
            chosen += 1
            q = best_edge[n]
            relation = kg.relation_texts[q]
            values = dict(entity=kg.entity_names[e], neighbour=kg.entity_names[n], relation=relation)
            if n in kept:
                paths: tuple[str, ...] = (kept[e][0][1], kept[n][0][1])
                prompt = prompt_two
            else:
                paths = (kept[e][0][1],)
                prompt = prompt_one
            record = _base("link", [kg.entity_ids[e], kg.entity_ids[n]], [image_id(p) for p in paths],
                           model, prompt, relation=relation)
            items.append(WorkItem(record, paths, prompt.render(**values)))
    return items


def plan_summaries(kg: KnowledgeGraph, kept: dict[int, list[tuple[float, str]]], links: Sequence[WorkItem],
                   *, model: str, prompt: Prompt, max_images: int) -> list[WorkItem]:
    """One image-set summary per planned link pair whose two entities both have kept images."""
    index = {eid: i for i, eid in enumerate(kg.entity_ids)}
    items = []
    for link in links:
        e, n = (index[x] for x in link.record.entities)
        if e not in kept or n not in kept:
            continue
        paths = [p for _, p in kept[e][:max_images]] + [p for _, p in kept[n][:max_images]]
        record = _base("summary", list(link.record.entities), [image_id(p) for p in paths], model, prompt)
        values = dict(entity=kg.entity_names[e], neighbour=kg.entity_names[n])
        items.append(WorkItem(record, tuple(paths), prompt.render(**values)))
    return items


# ---------------------------------------------------------------------------- execution
def _process_batch(vlm: VLM, batch: Sequence[WorkItem], config: CaptionConfig,
                   summary: CaptionSummary) -> list[CaptionRecord]:
    """Run one batch; image errors become error records, the rest goes through the VLM."""
    ready: list[tuple[WorkItem, Any]] = []
    out: list[CaptionRecord] = []
    for item in batch:
        try:
            images = [load_image(p) for p in item.image_paths]
        except ImageLoadError as error:
            item.record.status = "error"
            item.record.error = f"{error.reason} image: {error}"
            summary.errors[f"{item.record.kind}/{error.reason} image"] += 1
            out.append(item.record)
            continue
        ready.append((item, compose_side_by_side(images, height=config.tile_height)))
    if ready:
        kind = ready[0][0].record.kind
        pictures = [image for _, image in ready]
        prompts = [item.prompt_text for item, _ in ready]
        if kind == "relevance":
            for (item, _), p in zip(ready, vlm.yes_probability(pictures, prompts), strict=True):
                item.record.p_yes = round(float(p), 6)
                item.record.kept = bool(p >= config.threshold)
                out.append(item.record)
        else:
            texts = vlm.generate(pictures, prompts, max_new_tokens=config.max_new_tokens)
            for (item, _), text in zip(ready, texts, strict=True):
                item.record.text = text
                out.append(item.record)
        summary.images_processed += sum(len(item.image_paths) for item, _ in ready)
    for record in out:
        if record.status == "ok":
            summary.done[record.kind] += 1
    return out


def _merge_parts(cache: Path) -> None:
    """Append the shard records (``<cache>.part-*``) that the cache lacks or that update it
    (an error record retried with ``retry_errors``; the last record of a key wins); drop shards."""
    parts = sorted(cache.parent.glob(cache.name + ".part-*"))
    if not parts:
        return
    repair_cache(cache)
    present = read_cache(cache).records
    for part in parts:
        repair_cache(part)
    new = [r for k, r in read_cache(parts).records.items() if present.get(k) != r]
    append_records(cache, new)
    for part in parts:
        part.unlink()
    logger.info("merged %d records from %d shard file(s) into %s", len(new), len(parts), cache)


def make_state() -> Any:
    """An ``accelerate.PartialState`` for this process (multi-process via ``accelerate launch``
    or ``torchrun``; several processes without CUDA use gloo on the CPU).

    :raises KGT5MMError: when the launcher started several processes but the state sees one
        (each would caption everything)
    """
    import torch
    from accelerate import PartialState

    world = int(os.environ.get("WORLD_SIZE", "1"))
    use_cpu = os.environ.get("ACCELERATE_USE_CPU", "").lower() in ("1", "true", "yes") or (
        world > 1 and not torch.cuda.is_available())
    state = PartialState(cpu=use_cpu)
    if world > 1 and state.num_processes != world:
        raise KGT5MMError(f"WORLD_SIZE={world} but accelerate sees {state.num_processes} process(es)")
    return state


def run_captioning(kg: KnowledgeGraph, config: CaptionConfig, *, vlm: VLM | None = None,
                   state: Any = None, entities: Sequence[int] | None = None,
                   on_batch: Callable[[int], None] | None = None) -> CaptionSummary:
    """Caption the images of ``kg`` into ``config.cache`` (see the module docstring).

    :param kg: graph with ``entity_images``
    :param config: :class:`CaptionConfig`
    :param vlm: a loaded :class:`~kgt5mm.vision.vlm.VLM` (default: load ``config.model``)
    :param state: an ``accelerate.PartialState`` (default: :func:`make_state`)
    :param entities: restrict relevance and descriptions to these entity ids (links still
        reach any neighbour)
    :param on_batch: called with the number of batches written so far (progress hooks, tests)
    :returns: :class:`CaptionSummary` (summed over the processes of a multi-process run)
    """
    from tqdm.auto import tqdm

    config.validate()
    if kg.entity_images is None:
        raise ConfigError(f"graph {kg.name} has no entity images to caption")
    state = state or make_state()
    if config.max_batches is not None and state.num_processes > 1:
        raise ConfigError("max_batches works in single-process runs only")
    cache = Path(config.cache)
    cache.parent.mkdir(parents=True, exist_ok=True)
    summary = CaptionSummary()
    if state.is_main_process:
        summary.truncated_lines += int(repair_cache(cache))
        _merge_parts(cache)
    state.wait_for_everyone()
    if vlm is None:
        from kgt5mm.vision.vlm import VLM

        vlm = VLM(config.model, device=state.device, dtype=config.dtype)
    model_id = config.model
    prompts = {use: load_prompt(pid) for use, pid in config.prompts.items()}
    world, rank = state.num_processes, state.process_index
    out_path = cache if world == 1 else cache.with_name(f"{cache.name}.part-{rank}")
    batches_written = 0
    start = time.perf_counter()
    for kind in CAPTION_KINDS:
        if kind not in config.kinds:
            continue
        if kind == "relevance":
            items = plan_relevance(kg, model=model_id, prompt=prompts["relevance"], entities=entities)
        else:
            records = list(read_cache(cache).records.values())
            kept = kept_images(kg, records, model=model_id, prompt=prompts["relevance"],
                               threshold=config.threshold)
            if kind == "description":
                planned = kept if entities is None else {e: v for e, v in kept.items() if e in set(entities)}
                items = plan_descriptions(kg, planned, model=model_id, prompt=prompts["description"],
                                          max_images=config.max_images_per_entity)
            else:
                items = plan_links(kg, kept, model=model_id, prompt_two=prompts["link"],
                                   prompt_one=prompts["link_one_image"],
                                   per_entity=config.links_per_entity, sources=entities)
                if kind == "summary":
                    items = plan_summaries(kg, kept, items, model=model_id, prompt=prompts["summary"],
                                           max_images=config.max_images_per_entity)
        done = read_cache(cache).records
        pending = []
        for item in items:
            previous = done.get(item.record.key)
            if previous is not None and (previous.status == "ok" or not config.retry_errors):
                summary.skipped[kind] += 1
                if previous.status != "ok":
                    summary.cached_errors[kind] += 1
            else:
                pending.append(item)
        summary.planned[kind] = len(items)
        shard = pending[rank::world]
        logger.info("%s: %d items, %d cached, %d pending (this process: %d)", kind, len(items),
                    summary.skipped[kind], len(pending), len(shard))
        bar = tqdm(total=len(shard), desc=f"caption {kind}", unit="item",
                   disable=not state.is_main_process or not shard, dynamic_ncols=True)
        for i in range(0, len(shard), config.batch_size):
            if config.max_batches is not None and batches_written >= config.max_batches:
                summary.stopped_early = True
                break
            batch = shard[i : i + config.batch_size]
            append_records(out_path, _process_batch(vlm, batch, config, summary))
            batches_written += 1
            bar.update(len(batch))
            bar.set_postfix(errors=sum(summary.errors.values()), refresh=False)
            if on_batch is not None:
                on_batch(batches_written)
        bar.close()
        state.wait_for_everyone()
        if world > 1 and state.is_main_process:
            _merge_parts(cache)
        state.wait_for_everyone()
        if summary.stopped_early:
            break
    if kg.entity_images is not None:
        final = read_cache(cache).records.values()
        rel = [r for r in final if r.kind == "relevance" and r.model == model_id and r.status == "ok"
               and r.prompt_id == prompts["relevance"].id
               and r.prompt_version == prompts["relevance"].version]
        summary.kept_images = sum(1 for r in rel if r.p_yes is not None and r.p_yes >= config.threshold)
        summary.filtered_images = len(rel) - summary.kept_images
    summary.seconds = time.perf_counter() - start
    if world > 1:
        summary = _merge_summaries(summary)
    return summary


def _merge_summaries(summary: CaptionSummary) -> CaptionSummary:
    """Sum the per-process counts (all processes get the total; seconds = the slowest)."""
    from accelerate.utils import gather_object

    parts = gather_object([summary])
    total = CaptionSummary(planned=summary.planned, skipped=summary.skipped,
                           kept_images=summary.kept_images, filtered_images=summary.filtered_images,
                           truncated_lines=sum(p.truncated_lines for p in parts),
                           stopped_early=any(p.stopped_early for p in parts))
    for part in parts:
        total.done.update(part.done)
        total.errors.update(part.errors)
        total.images_processed += part.images_processed
    total.cached_errors = summary.cached_errors
    total.seconds = max(p.seconds for p in parts)
    return total

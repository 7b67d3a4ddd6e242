"""The Accelerate training loop behind ``train.py`` / ``kgt5mm train``.

::

    from kgt5mm.config import Config
    from kgt5mm.training import train
    result = train(Config.from_yaml("run_scripts/wn9_img_tiny.yaml"), resume="auto")
    result.test_metrics["both.realistic.mrr"]

One run writes ``<train.output_dir>/<name>/``::

    config.yaml        the resolved config
    tokenizer/         the SentencePiece tokenizer trained for the run
    states/step_N/     accelerator.save_state (model, optimizer, scheduler, RNG, loop state)
    best/              weights of the best validation checkpoint + its metrics
    model/             Hub-ready folder (KGT5MMModel.save_pretrained) of the best weights
    metrics.jsonl/csv  train / valid / test records; tensorboard/ ; curves.png ; metrics.json
    per_relation.tsv   per-relation test metrics of the final model, and per_relation_mrr.png

The loop body is short: each optimizer step goes through ``_maybe_log``, ``_maybe_validate``
and ``_maybe_save``. Sources are rebuilt every epoch by the context builder (the query's own
train edge excluded, sampling seeded by the epoch); batches come from a length-grouped plan
seeded by ``(seed, epoch)``, so ``resume`` replays the same batches after skipping the ones
already consumed.
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from kgt5mm.config import CONFIG_FILE, Config
from kgt5mm.errors import KGT5MMError
from kgt5mm.evaluation.evaluator import PER_RELATION_FILE, PER_RELATION_PLOT
from kgt5mm.files import atomic_dir, atomic_write_json, atomic_write_text
from kgt5mm.training.data import (
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
from kgt5mm.training.optim import build_optimizer, build_scheduler
from kgt5mm.training.state import TrainState
from kgt5mm.training.tracking import MetricsLog, plot_curves

if TYPE_CHECKING:  # pragma: no cover
    from accelerate import Accelerator

__all__ = ["TrainResult", "Trainer", "train", "make_accelerator", "latest_state", "STATES_DIR"]

logger = logging.getLogger(__name__)

STATES_DIR = "states"
BEST_DIR = "best"
MODEL_DIR = "model"
TOKENIZER_DIR = "tokenizer"
_BEST_WEIGHTS = "weights.pt"
#: The settings a run's tokenizer was made with (checked when the run folder is reused).
_TOKENIZER_SETTINGS = "kgt5mm_tokenizer.json"


@dataclass
class TrainResult:
    """What a finished (or stopped) run produced.

    :ivar run_dir: the run folder
    :ivar model_dir: Hub-ready model folder, or ``None`` when not written
    :ivar global_step: optimizer steps done
    :ivar best_step, best_metric: the best validation checkpoint (``None`` / ``-inf`` if none)
    :ivar valid_metrics: last validation metrics
    :ivar test_metrics: final test metrics (empty when not run)
    :ivar padding_share: padded share of source + target positions in the last epoch
    :ivar examples_per_second: wall-clock throughput of this segment over all processes:
        examples over elapsed time, validation, saving and epoch preparation included
        (``train_seconds`` counts the training steps alone)
    :ivar train_seconds: time spent in training steps over all segments of the run
    :ivar stopped_early: early stopping ended the run
    :ivar finished: the schedule ran to its end (False when stopped by ``stop_after_steps``)
    """

    run_dir: Path
    model_dir: Path | None
    global_step: int
    best_step: int | None
    best_metric: float
    valid_metrics: dict[str, float] = field(default_factory=dict)
    test_metrics: dict[str, float] = field(default_factory=dict)
    padding_share: float = float("nan")
    examples_per_second: float = float("nan")
    train_seconds: float = 0.0
    stopped_early: bool = False
    finished: bool = True


def make_accelerator(config: Config) -> Accelerator:
    """The Accelerator of a run: mixed precision, gradient accumulation, TensorBoard logs."""
    from accelerate import Accelerator
    from accelerate.utils import ProjectConfiguration

    run_dir = config.run_dir
    return Accelerator(
        cpu=_multi_process_without_gpu(),
        mixed_precision=config.train.mixed_precision,
        gradient_accumulation_steps=config.train.gradient_accumulation_steps,
        log_with="tensorboard" if config.train.tensorboard else None,
        project_config=ProjectConfiguration(project_dir=str(run_dir),
                                            logging_dir=str(run_dir / "tensorboard")),
    )


def _multi_process_without_gpu() -> bool:
    """Several processes (torchrun / accelerate launch env) but no CUDA: use gloo on the CPU.

    Accelerate only picks its MULTI_CPU mode when asked for the CPU explicitly; ``accelerate
    launch --cpu`` starts a single process, so multi-process CPU runs come from
    ``torchrun --nproc_per_node N`` or ``accelerate launch --multi_gpu --num_processes N``.
    """
    import torch

    if os.environ.get("ACCELERATE_USE_CPU", "").lower() in ("1", "true", "yes"):
        return True
    world = int(os.environ.get("WORLD_SIZE", "1"))
    return world > 1 and not torch.cuda.is_available()


def _state_folders(run_dir: str | Path) -> list[Path]:
    """The complete ``states/step_N`` folders of a run, oldest first."""
    states = [p for p in (Path(run_dir) / STATES_DIR).glob("step_*")
              if p.is_dir() and p.name[len("step_"):].isdigit()]
    return sorted(states, key=lambda p: int(p.name[len("step_"):]))


def latest_state(run_dir: str | Path) -> Path | None:
    """The newest complete ``states/step_N`` folder of a run, or ``None``."""
    states = _state_folders(run_dir)
    return states[-1] if states else None


def _best_step_on_disk(run_dir: Path) -> int | None:
    """The step recorded in ``best/metrics.json`` (``None`` when missing or unreadable)."""
    try:
        return int(json.loads((Path(run_dir) / BEST_DIR / "metrics.json").read_text())["step"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _load_graph(config: Config):
    from kgt5mm.data import load_graph

    return load_graph(config.data.dataset, data_dir=config.data.data_dir)


class Trainer:
    """One training run: builds the pieces from the config, then :meth:`fit`.

    Not meant to be subclassed; use :func:`train`. Attributes are public for tests and
    benchmarks (``model``, ``tokenizer``, ``kg``, ``builder``, ``state``, ...).
    """

    def __init__(self, config: Config, *, accelerator: Accelerator | None = None) -> None:
        from accelerate.utils import set_seed

        from kgt5mm.context import ContextBuilder
        from kgt5mm.modeling import build_model, encode_targets, token_counter

        config.validate()
        config.context = config.context.resolved()  # record the installed layout prompt version
        self.config = config
        self.run_dir = config.run_dir
        self.accelerator = accelerator or make_accelerator(config)
        acc = self.accelerator
        tc = config.train
        set_seed(tc.seed)
        import torch

        self._previous_threads = torch.get_num_threads()
        if tc.num_threads is not None:
            torch.set_num_threads(tc.num_threads)
        with acc.main_process_first():
            self.kg = _load_graph(config)
            self.tokenizer = self._tokenizer()
        self.builder = ContextBuilder(self.kg, config.context, count_tokens=token_counter(self.tokenizer))
        self.targets = encode_targets(self.tokenizer, self.kg.entity_names)
        self.queries, self.edges = train_queries(self.kg, limit=config.data.train_limit)
        if not len(self.queries):
            raise KGT5MMError(f"graph {self.kg.name} has no training triples: nothing to train on")
        from kgt5mm.evaluation import select_queries

        self.valid_queries = select_queries(self.kg.queries("valid"), tc.eval_queries, tc.seed)
        n_batches = num_planned_batches(len(self.queries), batch_size=tc.batch_size,
                                        group_size=tc.group_size, length_grouping=tc.length_grouping)
        unit = acc.num_processes * tc.gradient_accumulation_steps
        self.batches_per_epoch = -(-n_batches // unit) * unit // acc.num_processes  # per process
        self.steps_per_epoch = self.batches_per_epoch // tc.gradient_accumulation_steps
        self.total_steps = tc.max_steps or max(1, math.ceil(tc.epochs * self.steps_per_epoch))

        model = build_model(config.model, tokenizer=self.tokenizer)
        optimizer = build_optimizer(model, tc)
        self.scheduler = build_scheduler(optimizer, tc, total_steps=self.total_steps)
        self.model, self.optimizer = acc.prepare(model, optimizer)
        self.state = TrainState(num_processes=acc.num_processes)
        acc.register_for_checkpointing(self.state, self.scheduler)
        self.log = MetricsLog(self.run_dir, accelerator=acc if tc.tensorboard else None,
                              enabled=acc.is_main_process)
        self._epoch_data: EpochData | None = None
        self._epoch_data_epoch = -1
        self._window: dict[str, float] = {}
        self.valid_metrics: dict[str, float] = {}

    # ------------------------------------------------------------------ setup helpers
    def _tokenizer(self):
        from kgt5mm.modeling import load_tokenizer, train_tokenizer

        folder = self.run_dir / TOKENIZER_DIR
        settings = {"dataset": self.config.data.dataset, "tokenizer": asdict(self.config.tokenizer)}
        if (folder / "tokenizer_config.json").exists():
            saved_path = folder / _TOKENIZER_SETTINGS
            saved = json.loads(saved_path.read_text()) if saved_path.exists() else None
            if saved is not None and saved != settings:
                changed = _diff(saved, settings)
                raise KGT5MMError(
                    f"the run folder's tokenizer {folder} was made with other settings "
                    f"({', '.join(changed)}): choose another name, or delete the folder to start over")
            logger.info("using the run's tokenizer %s", folder)
            return load_tokenizer(folder)
        if self.accelerator.is_main_process:
            # written whole or not at all: a half-written folder would pass the check above
            with atomic_dir(folder, marker="tokenizer_config.json") as tmp:
                train_tokenizer(self.kg, config=self.config.tokenizer, output_dir=tmp)
                (tmp / _TOKENIZER_SETTINGS).write_text(json.dumps(settings, indent=2) + "\n")
            return load_tokenizer(folder)  # as every other process and a resume will load it
        raise KGT5MMError(f"the main process did not write the tokenizer to {folder}")

    def _epoch(self, epoch: int) -> EpochData:
        """Sources of ``epoch`` (built split over the processes), token ids and batches."""
        from accelerate.utils import gather_object

        acc, tc = self.accelerator, self.config.train
        rank, world = acc.process_index, acc.num_processes
        mine = np.arange(rank, len(self.queries), world)
        contexts = self.builder.select_many(self.queries[mine], exclude_edges=self.edges[mine], epoch=epoch)
        sources = [c.text for c in contexts]
        local_in_ctx = [int(a) in c.neighbours for a, c in zip(self.queries[mine, 2], contexts, strict=True)]
        encoded = self.tokenizer(sources, add_special_tokens=True)["input_ids"]
        limit, eos = tc.max_source_length, self.tokenizer.eos_token_id
        local = [ids if len(ids) <= limit else ids[:limit - 1] + [eos] for ids in encoded]
        truncated = sum(len(ids) > limit for ids in encoded)
        if world > 1:
            parts = gather_object([(rank, local, local_in_ctx, truncated)])
            source_ids: list[list[int]] = [[] for _ in range(len(self.queries))]
            in_context = np.zeros(len(self.queries), dtype=bool)
            truncated = 0
            for part_rank, ids, flags, count in parts:
                for position, seq in zip(range(part_rank, len(self.queries), world), ids, strict=True):
                    source_ids[position] = seq
                in_context[part_rank::world] = flags
                truncated += count
        else:
            source_ids = local
            in_context = np.asarray(local_in_ctx, dtype=bool)
        label_ids = [self.targets[a] for a in self.queries[:, 2]]
        src_len = np.fromiter((len(s) for s in source_ids), dtype=np.int64, count=len(source_ids))
        lab_len = np.fromiter((len(t) for t in label_ids), dtype=np.int64, count=len(label_ids))
        plan = plan_batches(length_key(src_len, lab_len), batch_size=tc.batch_size, seed=tc.seed, epoch=epoch,
                            group_size=tc.group_size, length_grouping=tc.length_grouping)
        share = padding_share(src_len, lab_len, plan)
        batches = shard_batches(plan, process_index=rank, num_processes=world,
                                multiple_of=tc.gradient_accumulation_steps)
        if truncated:
            logger.warning("epoch %d: %d of %d sources cut at train.max_source_length=%d",
                           epoch, truncated, len(source_ids), limit)
        logger.info("epoch %d: %d examples, %d batches per process, source tokens mean %.1f max %d, "
                    "padding share %.1f%%, answer among the source's neighbours %.1f%%", epoch,
                    len(source_ids), len(batches), src_len.mean(), src_len.max(), 100 * share,
                    100 * in_context.mean())
        if epoch == 0 and acc.is_main_process and tc.log_samples:
            for i in np.random.default_rng(tc.seed).choice(len(mine), min(tc.log_samples, len(mine)),
                                                           replace=False):
                logger.info("sample source: %s\n    -> target: %s", sources[i],
                            self.kg.entity_names[self.queries[mine[i], 2]])
        return EpochData(source_ids, label_ids, batches, share, truncated, in_context)

    def _tensors(self, batch: np.ndarray) -> dict[str, Any]:
        import torch

        data = self._epoch_data
        arrays = collate(data.source_ids, data.label_ids, batch, pad_id=self.tokenizer.pad_token_id)
        weight = self.config.train.out_of_context_weight
        if weight != 1.0:
            arrays["example_weights"] = np.where(data.answer_in_context[batch], 1.0, weight).astype(np.float32)
        return {k: torch.from_numpy(v).to(self.accelerator.device) for k, v in arrays.items()}

    def _loss(self, inputs: dict[str, Any]):
        """The model's mean token loss, or :func:`example_weighted_loss` with example weights."""
        weights = inputs.pop("example_weights", None)
        if weights is None:
            return self.model(**inputs).loss
        # Without ``labels`` the model skips its own (unweighted) loss; the decoder inputs are the
        # labels shifted right, exactly as the model would build them.
        labels = inputs.pop("labels")
        shift = self.accelerator.unwrap_model(self.model).prepare_decoder_input_ids_from_labels
        logits = self.model(**inputs, decoder_input_ids=shift(labels=labels)).logits
        return example_weighted_loss(logits, labels, weights)

    # ------------------------------------------------------------------ the loop
    def fit(self, *, resume: str | Path | None = None, stop_after_steps: int | None = None) -> TrainResult:
        """Train until the schedule ends, early stopping, or ``stop_after_steps``.

        :param resume: a ``states/step_N`` folder, or ``"auto"`` for the run's latest one
            (a fresh start when there is none)
        :param stop_after_steps: stop (saving a resumable state) once this many optimizer steps
            are done, without changing the schedule -- for time-boxed jobs and resume tests
        """
        import torch

        try:
            return self._fit(resume=resume, stop_after_steps=stop_after_steps)
        finally:
            torch.set_num_threads(self._previous_threads)

    def _fit(self, *, resume: str | Path | None, stop_after_steps: int | None) -> TrainResult:
        from tqdm.auto import tqdm

        acc, tc, state = self.accelerator, self.config.train, self.state
        self._resume(resume)
        if acc.is_main_process:  # only now: a refused start must not overwrite the run's config
            self.config.to_yaml(self.run_dir / CONFIG_FILE)
        if tc.tensorboard:
            acc.init_trackers("tensorboard", config=_flat_scalars(self.config.to_dict()))
        self._summary()
        bar = tqdm(total=self.total_steps, initial=state.global_step, disable=not acc.is_local_main_process,
                   desc="train", dynamic_ncols=True)
        self.model.train()
        segment_start, segment_examples = time.perf_counter(), 0
        self._window = {"loss": 0.0, "count": 0, "examples": 0, "time": time.perf_counter()}
        if stop_after_steps is not None and stop_after_steps < 1:
            raise KGT5MMError(f"stop_after_steps must be >= 1, got {stop_after_steps}")
        stop = (state.global_step >= self.total_steps or state.stopped_early
                or (stop_after_steps is not None and state.global_step >= stop_after_steps))
        while not stop:
            if self._epoch_data_epoch != state.epoch:
                self._epoch_data = self._epoch(state.epoch)
                self._epoch_data_epoch = state.epoch
            batches = self._epoch_data.batches
            step_start = time.perf_counter()
            for batch in batches[state.batch_in_epoch:]:
                inputs = self._tensors(batch)
                with acc.accumulate(self.model):
                    loss = self._loss(inputs)
                    acc.backward(loss)
                    if acc.sync_gradients and tc.max_grad_norm is not None:
                        acc.clip_grad_norm_(self.model.parameters(), tc.max_grad_norm)
                    self.optimizer.step()
                    self.optimizer.zero_grad()
                state.batch_in_epoch += 1
                examples = len(batch) * acc.num_processes
                state.examples_seen += examples
                segment_examples += examples
                self._window["loss"] += loss.detach().float()
                self._window["count"] += 1
                self._window["examples"] += examples
                if not acc.sync_gradients:
                    continue
                self.scheduler.step()
                state.global_step += 1
                now = time.perf_counter()
                state.train_seconds += now - step_start
                bar.update(1)
                self._maybe_log(bar)
                self._maybe_validate()
                finished = state.global_step >= self.total_steps or state.stopped_early
                if finished:  # the final weights compete for "best" too; saved with the state
                    self._maybe_validate(force=True)
                halted = stop_after_steps is not None and state.global_step >= stop_after_steps
                self._maybe_save(force=finished or halted)
                if finished or halted:
                    stop = True
                    break
                step_start = time.perf_counter()
            else:
                state.epoch += 1
                state.batch_in_epoch = 0
        bar.close()
        elapsed = time.perf_counter() - segment_start
        throughput = segment_examples / elapsed if elapsed > 0 else float("nan")
        finished = state.global_step >= self.total_steps or state.stopped_early
        result = self._finish(throughput, finished=finished)
        return result

    # ------------------------------------------------------------------ periodic work
    def _maybe_log(self, bar) -> None:
        acc, tc, state, window = self.accelerator, self.config.train, self.state, self._window
        if state.global_step % tc.log_every_steps and state.global_step != self.total_steps:
            return
        import torch

        loss = window["loss"] / max(window["count"], 1)
        loss = acc.reduce(torch.as_tensor(loss, device=acc.device, dtype=torch.float32), "mean").item()
        now = time.perf_counter()
        speed = window["examples"] / max(now - window["time"], 1e-9)
        lr = self.scheduler.get_last_lr()[0]
        epoch = state.epoch + state.batch_in_epoch / max(self.batches_per_epoch, 1)
        bar.set_postfix(loss=f"{loss:.4f}", lr=f"{lr:.2e}", ex_s=f"{speed:.1f}")
        self.log.log("train", state.global_step, {"loss": loss, "lr": lr, "epoch": round(epoch, 4),
                                                   "examples_per_second": speed})
        self._window = {"loss": 0.0, "count": 0, "examples": 0, "time": now}

    def _maybe_validate(self, *, force: bool = False) -> None:
        tc, state = self.config.train, self.state
        due = tc.eval_every_steps is not None and state.global_step % tc.eval_every_steps == 0
        if not (due or force) or state.last_eval_step == state.global_step:
            return
        metrics = self.evaluate("valid", queries=self.valid_queries)
        value = metrics.get(tc.metric, float("nan"))
        if math.isnan(value):
            raise KGT5MMError(f"train.metric {tc.metric!r} is not among the validation metrics")
        improved = state.record_validation(value, step=state.global_step)
        self.valid_metrics = metrics
        self.log.log("valid", state.global_step, {**metrics, "best": improved})
        logger.info("step %d: valid %s %.4f%s", state.global_step, tc.metric, value,
                    " (best)" if improved else f" (best {state.best_metric:.4f} @ {state.best_step})")
        if improved:
            self._save_best(metrics)
        if tc.early_stopping_patience is not None and state.evals_without_improvement >= tc.early_stopping_patience:
            logger.info("early stopping: %d validations without improvement", state.evals_without_improvement)
            state.stopped_early = True

    def _maybe_save(self, *, force: bool = False) -> None:
        tc, state = self.config.train, self.state
        due = tc.save_every_steps is not None and state.global_step % tc.save_every_steps == 0
        if due or force:
            self.save_state()

    # ------------------------------------------------------------------ evaluation & artefacts
    def evaluate(self, split: str, *, queries: np.ndarray | None = None) -> dict[str, float]:
        """Constrained-ranking metrics of the current weights (each query on one process).

        Validation uses the fixed subset and ignores ``eval.max_queries``; the test split uses
        ``config.eval`` as it is.
        """
        return dict(self._evaluation(split, queries=queries).metrics)

    def _evaluation(self, split: str, *, queries: np.ndarray | None = None):
        """The :class:`~kgt5mm.evaluation.EvaluationResult` behind :meth:`evaluate`."""
        from kgt5mm.evaluation import evaluate

        eval_config = self.config.eval if queries is None else replace(self.config.eval, max_queries=None)
        eval_config = eval_config.with_source_limit(self.config.train.max_source_length)
        model = self.accelerator.unwrap_model(self.model)
        model.eval()
        try:
            return evaluate(model, self.tokenizer, self.kg, self.builder, split=split, queries=queries,
                            config=eval_config, accelerator=self.accelerator)
        finally:
            self.model.train()

    def save_state(self) -> Path:
        """``accelerator.save_state`` into ``states/step_N`` (+ config); keep the newest N.

        The state is written to ``states/.partial-step_N`` and renamed once every process has
        written its part, so :func:`latest_state` (and ``--resume``) never sees a half-written
        state of a killed job.
        """
        acc = self.accelerator
        folder = self.run_dir / STATES_DIR / f"step_{self.state.global_step}"
        partial = folder.with_name(f".partial-{folder.name}")
        if acc.is_main_process and partial.exists():
            shutil.rmtree(partial)  # left by a job killed while saving
        acc.wait_for_everyone()
        acc.save_state(str(partial))
        acc.wait_for_everyone()
        if acc.is_main_process:
            self.config.to_yaml(partial / CONFIG_FILE)
            if folder.exists():  # the same step saved again (e.g. a stop right after a save)
                shutil.rmtree(folder)
            os.replace(partial, folder)
            for old in _state_folders(self.run_dir)[:-self.config.train.keep_states]:
                shutil.rmtree(old, ignore_errors=True)
        acc.wait_for_everyone()
        return folder

    def _save_best(self, metrics: dict[str, float]) -> None:
        import torch

        acc = self.accelerator
        acc.wait_for_everyone()
        weights = acc.get_state_dict(self.model)
        if acc.is_main_process:
            # weights, step and config are swapped in together: a kill never pairs one step's
            # weights with another step's metrics.json
            with atomic_dir(self.run_dir / BEST_DIR, marker="metrics.json") as folder:
                torch.save({k: v.detach().cpu() for k, v in weights.items()}, folder / _BEST_WEIGHTS)
                _write_json(folder / "metrics.json", {"step": self.state.global_step, "metrics": metrics})
                self.config.to_yaml(folder / CONFIG_FILE)
        acc.wait_for_everyone()

    def _load_best(self) -> bool:
        import torch

        path = self.run_dir / BEST_DIR / _BEST_WEIGHTS
        if self.state.best_step is None or not path.exists():
            return False
        saved_step = _best_step_on_disk(self.run_dir)
        if saved_step != self.state.best_step:
            logger.warning("%s holds step %s, not the recorded best step %d: keeping the final weights",
                           path.parent, saved_step, self.state.best_step)
            return False
        self.accelerator.wait_for_everyone()
        weights = torch.load(path, map_location="cpu", weights_only=True)
        self.accelerator.unwrap_model(self.model).load_state_dict(weights)
        logger.info("loaded the best weights (step %d, %s %.4f)", self.state.best_step,
                    self.config.train.metric, self.state.best_metric)
        return True

    def _resume(self, resume: str | Path | None) -> None:
        if resume is None:
            existing = latest_state(self.run_dir)
            if existing is not None and self.state.global_step == 0:
                raise KGT5MMError(
                    f"the run folder {self.run_dir} already holds saved states ({existing.name}): "
                    "pass --resume to continue that run, or choose another name / delete the folder")
            if self.state.global_step == 0:
                self.log.truncate(-1)  # a fresh run: drop records of an earlier, unsaved attempt
            return
        folder = latest_state(self.run_dir) if str(resume) in ("auto", "latest") else Path(resume)
        if folder is None:
            logger.info("no saved state under %s: starting from scratch", self.run_dir / STATES_DIR)
            self.log.truncate(-1)
            return
        if not folder.is_dir():
            raise KGT5MMError(f"cannot resume from {str(folder)!r}: no such state folder")
        saved = folder / CONFIG_FILE
        if saved.exists():
            before = Config.from_yaml(saved).to_dict()
            changed = _diff(before, self.config.to_dict())
            if changed:
                logger.warning("resuming with a changed config: %s", ", ".join(changed))
        self.accelerator.load_state(str(folder))
        saved_world, world = self.state.num_processes, self.accelerator.num_processes
        if saved_world != world:
            raise KGT5MMError(
                f"{folder} was saved by a run with {saved_world} processes and this one has {world}: "
                f"batches are planned per process, so resume with {saved_world} processes")
        self._set_aside_later_work(folder)
        self.log.truncate(self.state.global_step)
        logger.info("resumed from %s: step %d, epoch %d, batch %d", folder, self.state.global_step,
                    self.state.epoch, self.state.batch_in_epoch)

    def _set_aside_later_work(self, folder: Path) -> None:
        """After resuming from ``folder``, rename what a later, abandoned continuation left.

        States newer than the resumed one would otherwise win ``--resume`` (and the clean-up of
        old states) later; best weights from a step the resumed state never recorded as best
        would be exported as if they were. Both are renamed ``abandoned-*``, never deleted.
        """
        acc, state = self.accelerator, self.state
        later = [p for p in _state_folders(self.run_dir) if int(p.name[len("step_"):]) > state.global_step]
        best_dir = self.run_dir / BEST_DIR
        best_on_disk = _best_step_on_disk(self.run_dir)
        stale_best = best_on_disk != state.best_step or (best_dir.exists() and best_on_disk is None)
        acc.wait_for_everyone()  # every process decided before the main one renames
        if stale_best and state.best_step is not None:
            logger.warning("the best weights of step %d are gone (%s holds step %s): the best is "
                           "tracked afresh from here", state.best_step, best_dir, best_on_disk)
        if stale_best:
            state.forget_best()
        if acc.is_main_process:
            for path in [*later, *([best_dir] if stale_best and best_dir.exists() else [])]:
                aside = path.with_name(f"abandoned-{path.name}")
                if aside.exists():
                    shutil.rmtree(aside)
                os.replace(path, aside)
                logger.warning("resumed from %s: set %s aside as %s", folder.name, path.name, aside.name)
        acc.wait_for_everyone()

    def _summary(self) -> None:
        acc, tc = self.accelerator, self.config.train
        from kgt5mm.modeling import count_parameters

        trainable, total = count_parameters(acc.unwrap_model(self.model))
        logger.info("***** Running training *****")
        logger.info("  dataset %s: %d train queries (both directions), %d validation queries",
                    self.kg.name, len(self.queries), len(self.valid_queries))
        logger.info("  model: %.2fM parameters (%.2fM trainable), vocabulary %d", total / 1e6,
                    trainable / 1e6, len(self.tokenizer))
        logger.info("  processes %d, batch per process %d, accumulation %d, total batch %d",
                    acc.num_processes, tc.batch_size, tc.gradient_accumulation_steps,
                    tc.batch_size * acc.num_processes * tc.gradient_accumulation_steps)
        logger.info("  %d optimizer steps (%d per epoch), mixed precision %s, run folder %s",
                    self.total_steps, self.steps_per_epoch, acc.mixed_precision, self.run_dir)

    def _finish(self, throughput: float, *, finished: bool) -> TrainResult:
        acc, tc, state = self.accelerator, self.config.train, self.state
        test_metrics: dict[str, float] = {}
        model_dir = None
        if finished:
            self._maybe_validate(force=True)  # no-op unless resumed from a pre-validation state
            self._load_best()
            if tc.test_at_end:
                test_result = self._evaluation("test")
                test_metrics = dict(test_result.metrics)
                self.log.log("test", state.global_step, test_metrics)
                if acc.is_main_process:
                    from kgt5mm.modeling import count_parameters

                    _write_json(self.run_dir / "metrics.json", {
                        "dataset": self.kg.name, "split": "test", "step": state.global_step,
                        "best_step": state.best_step, "best_metric": {tc.metric: state.best_metric},
                        "train_seconds": round(state.train_seconds, 1),
                        "examples_per_second": round(throughput, 1),
                        "num_processes": acc.num_processes,
                        "num_parameters": count_parameters(acc.unwrap_model(self.model))[1],
                        "metrics": test_metrics})
                    atomic_write_text(self.run_dir / PER_RELATION_FILE, test_result.per_relation_table())
                    test_result.plot_per_relation(self.run_dir / PER_RELATION_PLOT)
            if tc.save_model:
                model_dir = self._export(test_metrics)
        if acc.is_main_process:
            self.log.write_csv()
            plot_curves(self.log.records, self.run_dir / "curves.png", metric=tc.metric)
        if tc.tensorboard:
            acc.end_training()
        share = self._epoch_data.padding_share if self._epoch_data is not None else float("nan")
        return TrainResult(
            run_dir=self.run_dir, model_dir=model_dir, global_step=state.global_step,
            best_step=state.best_step, best_metric=state.best_metric, valid_metrics=self.valid_metrics,
            test_metrics=test_metrics, padding_share=share, examples_per_second=throughput,
            train_seconds=state.train_seconds, stopped_early=state.stopped_early, finished=finished)

    def _export(self, metrics: dict[str, float]) -> Path:
        """Hub-ready folder ``<run>/model`` (and the LoRA adapters alone in ``<run>/adapter``)."""
        from kgt5mm.hub import KGT5MMModel
        from kgt5mm.modeling import is_peft_model, save_model

        acc = self.accelerator
        acc.wait_for_everyone()
        folder = self.run_dir / MODEL_DIR
        if acc.is_main_process:
            model = acc.unwrap_model(self.model)
            bundle = KGT5MMModel(model, self.tokenizer, config=self.config, entity_names=self.kg.entity_names,
                                 entity_ids=self.kg.entity_ids, dataset=self.config.data.dataset,
                                 metrics=metrics or None, metrics_split="test" if metrics else None)
            bundle.save_pretrained(folder)
            if is_peft_model(model) and not self.config.model.lora.merge_on_save:
                save_model(model, self.run_dir / "adapter", merge_lora=False)
            logger.info("saved the model folder %s", folder)
        acc.wait_for_everyone()
        return folder


def train(config: Config, *, accelerator: Accelerator | None = None, resume: str | Path | None = None,
          stop_after_steps: int | None = None) -> TrainResult:
    """Train a link predictor as ``config`` says; see :class:`Trainer` and :meth:`Trainer.fit`.

    :param config: a validated :class:`~kgt5mm.config.Config`
    :param accelerator: an existing Accelerator (default: one made from the config)
    :param resume: ``"auto"`` (latest state of the run, if any) or a ``states/step_N`` folder
    :param stop_after_steps: stop with a resumable state after this many optimizer steps
    :return: :class:`TrainResult`
    """
    trainer = Trainer(config, accelerator=accelerator)
    return trainer.fit(resume=resume, stop_after_steps=stop_after_steps)


# ---------------------------------------------------------------------- small helpers
def _write_json(path: Path, data: dict[str, Any]) -> None:
    atomic_write_json(path, data, default=_json_default)


def _json_default(value: Any) -> Any:
    if isinstance(value, (np.integer, np.floating)):
        return value.item()
    return str(value)


def _flat_scalars(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict):
            out.update(_flat_scalars(value, f"{prefix}{key}."))
        elif isinstance(value, (int, float, str, bool)):
            out[f"{prefix}{key}"] = value
    return out


def _diff(before: dict[str, Any], after: dict[str, Any], prefix: str = "") -> list[str]:
    changed = []
    for key in sorted(set(before) | set(after)):
        a, b = before.get(key), after.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            changed.extend(_diff(a, b, f"{prefix}{key}."))
        elif a != b:
            changed.append(f"{prefix}{key}: {a!r} -> {b!r}")
    return changed

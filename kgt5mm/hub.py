"""A trained kgt5mm model as one Hub-compatible folder: save, load, push, predict.

From a model id to ranked predictions in three lines::

    from kgt5mm.hub import KGT5MMModel
    model = KGT5MMModel.from_pretrained("user/kgt5mm-wn9-img")     # or a local folder
    model.predict([("house cat", "_hypernym")], top_k=10)          # loads the dataset it names

The folder (:meth:`KGT5MMModel.save_pretrained`, written to a temporary folder and renamed
into place) holds:

- ``config.json`` + ``model.safetensors``: the transformers seq2seq model (LoRA merged);
- ``tokenizer.json``, ``tokenizer_config.json``, ``spiece.model`` ...: the tokenizer;
- ``kgt5mm_config.json``: the run config (context settings, prompt ids and versions, dataset
  name, eval settings), format version and the evaluation results;
- ``entity_names.json``: the entity table (external ids and unique names, in id order);
- ``captions/``: copies of the caption files the context settings name
  (``context.caption_files``, rewritten to these relative paths), when there are any;
- ``README.md``: a model card with YAML metadata (``library_name: kgt5mm``, tags, datasets,
  ``model-index`` with the metrics).
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from kgt5mm.errors import ConfigError, KGT5MMError

__all__ = [
    "CONFIG_FILE",
    "ENTITY_FILE",
    "KGT5MMModel",
    "MODEL_CARD_FILE",
    "parse_queries",
]

logger = logging.getLogger(__name__)

#: kgt5mm settings inside a model folder
CONFIG_FILE = "kgt5mm_config.json"
#: entity table inside a model folder
ENTITY_FILE = "entity_names.json"
#: model card
MODEL_CARD_FILE = "README.md"
#: caption files inside a model folder
CAPTIONS_DIR = "captions"
#: version of the folder layout written here
FORMAT_VERSION = 1


def _config_dict(config: Any) -> dict[str, Any]:
    if config is None:
        return {}
    if isinstance(config, dict):
        return json.loads(json.dumps(config))
    to_dict = getattr(config, "to_dict", None)
    if callable(to_dict):
        return json.loads(json.dumps(to_dict()))
    raise ConfigError(f"config must be a dict or have to_dict(), got {type(config).__name__}")


class KGT5MMModel:
    """A seq2seq link predictor with its tokenizer, settings and entity table.

    :param model: transformers seq2seq model (PEFT models are merged when saved)
    :param tokenizer: its tokenizer
    :param config: the run config (:class:`kgt5mm.config.Config` or its ``to_dict()``)
    :param entity_names: unique entity names in id order (the generation targets)
    :param entity_ids: external entity ids in id order (default: the names)
    :param dataset: dataset name (``load_graph`` name or path); default ``config.data.dataset``
    :param metrics: evaluation results (flat metric keys) for the model card
    :param metrics_split: the split the metrics were measured on
    """

    def __init__(
        self,
        model,
        tokenizer,
        *,
        config: Any = None,
        entity_names: Sequence[str],
        entity_ids: Sequence[str] | None = None,
        dataset: str | None = None,
        metrics: dict[str, float] | None = None,
        metrics_split: str | None = None,
    ) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.config = _config_dict(config)
        self.entity_names = list(entity_names)
        self.entity_ids = list(entity_ids) if entity_ids is not None else list(self.entity_names)
        if len(self.entity_ids) != len(self.entity_names):
            raise KGT5MMError("entity_ids and entity_names differ in length")
        if len(set(self.entity_names)) != len(self.entity_names):
            raise KGT5MMError("entity names must be unique (they are generation targets)")
        data = self.config.get("data") or {}
        self.dataset = dataset or data.get("dataset")
        self.metrics = dict(metrics or {})
        self.metrics_split = metrics_split
        self._kg = None
        self._builder = None
        self._trie = None

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_training(cls, model, tokenizer, kg, config: Any, *, metrics=None, metrics_split=None):
        """Wrap a freshly trained model with the graph it was trained on."""
        return cls(model, tokenizer, config=config, entity_names=kg.entity_names,
                   entity_ids=kg.entity_ids, dataset=getattr(kg, "name", None), metrics=metrics,
                   metrics_split=metrics_split)

    @property
    def context_config(self) -> dict[str, Any]:
        """The context builder settings (``config["context"]``)."""
        return dict(self.config.get("context") or {})

    # ------------------------------------------------------------------ saving
    def save_pretrained(self, save_directory: str | Path) -> Path:
        """Write the model folder (see the module docstring); atomic: tmp folder then rename.

        An existing model folder at ``save_directory`` is replaced; any other non-empty folder
        there is left alone (:class:`~kgt5mm.errors.KGT5MMError`).
        """
        from kgt5mm.files import atomic_dir

        target = Path(save_directory)
        with atomic_dir(target, marker=CONFIG_FILE) as tmp:
            model = self._plain_model()
            model.save_pretrained(str(tmp), safe_serialization=True)
            self.tokenizer.save_pretrained(str(tmp))
            vocab_file = getattr(self.tokenizer, "vocab_file", None)
            if vocab_file and Path(vocab_file).is_file() and not (tmp / Path(vocab_file).name).exists():
                shutil.copy2(vocab_file, tmp / Path(vocab_file).name)
            meta = self._kgt5mm_config()
            captions = self._copy_caption_files(tmp)
            if captions:
                meta["config"]["context"]["caption_files"] = captions
            (tmp / CONFIG_FILE).write_text(json.dumps(meta, indent=2) + "\n")
            (tmp / ENTITY_FILE).write_text(json.dumps(
                {"entity_ids": self.entity_ids, "entity_names": self.entity_names},
                ensure_ascii=False) + "\n", encoding="utf-8")
            (tmp / MODEL_CARD_FILE).write_text(self.model_card(), encoding="utf-8")
        logger.info("saved kgt5mm model to %s", target)
        return target

    def _copy_caption_files(self, folder: Path) -> list[str]:
        """Copy the context's caption files into ``folder/captions``; their relative paths.

        The context builder reads them at prediction time, so a model folder (or Hub repo)
        without them could not rebuild its training-time sources elsewhere.
        """
        from collections import Counter

        paths = [Path(p) for p in self.context_config.get("caption_files") or []]
        uses = Counter(p.name for p in paths)  # same file name in two folders: prefix the index
        out = []
        for i, path in enumerate(paths):
            if not path.is_file():
                raise KGT5MMError(f"caption file {str(path)!r} named by context.caption_files "
                                  "not found: it must be saved with the model")
            name = path.name if uses[path.name] == 1 else f"{i}_{path.name}"
            (folder / CAPTIONS_DIR).mkdir(exist_ok=True)
            shutil.copy2(path, folder / CAPTIONS_DIR / name)
            out.append(f"{CAPTIONS_DIR}/{name}")
        return out

    def _plain_model(self):
        try:
            from kgt5mm.modeling import unwrap_peft

            return unwrap_peft(self.model, merge=True)
        except ImportError:  # pragma: no cover
            return self.model

    def _kgt5mm_config(self) -> dict[str, Any]:
        from kgt5mm import __version__

        context = self.context_config
        prompts = {}
        if context.get("layout_prompt"):
            prompts[str(context["layout_prompt"])] = context.get("layout_prompt_version")
        return {
            "format_version": FORMAT_VERSION,
            "kgt5mm_version": __version__,
            "dataset": self.dataset,
            "num_entities": len(self.entity_names),
            "prompts": prompts,
            "config": self.config,
            "metrics": self.metrics,
            "metrics_split": self.metrics_split,
        }

    def _decoding_line(self) -> str:
        """The model card's sentence on the saved decoding settings, which evaluation reuses."""
        config = self.eval_config()
        views = (f", each answer candidate also scored on its own view (candidate views, up to "
                 f"{config.candidate_views})" if config.candidate_views else "")
        return (f"Decoding: beam {config.num_beams}, top {config.top_k}{views}; "
                f"`kgt5mm evaluate <folder> --split {self.metrics_split or 'test'}` uses the same "
                f"settings.")

    def model_card(self) -> str:
        """README.md text: YAML metadata (library, tags, datasets, model-index) and usage."""
        import yaml

        dataset = self.dataset or "unknown"
        meta: dict[str, Any] = {
            "library_name": "kgt5mm",
            "pipeline_tag": "text2text-generation",
            "tags": ["kgt5mm", "knowledge-graph-completion", "link-prediction", "multimodal", "t5"],
            "datasets": [dataset],
        }
        if self.metrics:
            wanted = [("both.realistic.mrr", "mrr", "MRR (filtered, realistic, both directions)")]
            wanted += [(f"both.realistic.hits_at_{k}", f"hits@{k}", f"Hits@{k} (filtered, realistic)")
                       for k in (1, 3, 10)]
            values = [{"type": t, "name": n, "value": round(float(self.metrics[key]), 6)}
                      for key, t, n in wanted if key in self.metrics]
            meta["model-index"] = [{
                "name": f"kgt5mm-{dataset}",
                "results": [{
                    "task": {"type": "link-prediction", "name": "Link prediction"},
                    "dataset": {"name": dataset, "type": dataset, "split": self.metrics_split or "test"},
                    "metrics": values,
                }],
            }]
        shape = ""
        model_type = getattr(getattr(self._plain_model(), "config", None), "model_type", "seq2seq")
        n_params = sum(p.numel() for p in self._plain_model().parameters())
        shape = f"{model_type}, {n_params / 1e6:.1f}M parameters"
        lines = [
            "---", yaml.safe_dump(meta, sort_keys=False, allow_unicode=True).strip(), "---", "",
            f"# kgt5mm link predictor for {dataset}", "",
            "A sequence-to-sequence knowledge graph completion model trained with "
            "[kgt5mm](https://github.com/) (MMKG-T5 / KGT5-context): the model reads a query and "
            "its multimodal context and generates the answer entity's name; beam search is "
            "constrained to the entity names, so every prediction is a real entity.", "",
            f"- model: {shape}", f"- entities: {len(self.entity_names)}",
            f"- context prompt: {self.context_config.get('layout_prompt')} "
            f"v{self.context_config.get('layout_prompt_version')}", "",
            "## Usage", "", "```python", "from kgt5mm.hub import KGT5MMModel",
            "model = KGT5MMModel.from_pretrained(\"<this repo id or folder>\")",
            "model.predict([(\"<entity name>\", \"<relation id>\")], top_k=10)", "```", "",
        ]
        if self.metrics:
            lines += ["## Evaluation", "",
                      f"Filtered ranking over train+valid+test, both directions, split "
                      f"`{self.metrics_split or 'test'}`, realistic ranks (PyKEEN definitions). "
                      f"{self._decoding_line()}", "",
                      "| side | MRR | Hits@1 | Hits@3 | Hits@10 | in-beam share |", "|---|---|---|---|---|---|"]
            for side in ("both", "tail", "head"):
                key = f"{side}.realistic."
                if key + "mrr" not in self.metrics:
                    continue
                cells = [self.metrics.get(key + m) for m in ("mrr", "hits_at_1", "hits_at_3", "hits_at_10")]
                cells.append(self.metrics.get(f"{side}.in_beam_share"))
                lines.append(f"| {side} | " + " | ".join(
                    "-" if c is None else f"{float(c):.4f}" for c in cells) + " |")
            lines.append("")
        return "\n".join(lines)

    def push_to_hub(self, repo_id: str, *, token: str | None = None, private: bool = False,
                    commit_message: str = "Upload kgt5mm model", revision: str | None = None) -> str:
        """Save to a temporary folder and upload it with ``huggingface_hub.HfApi.upload_folder``.

        :returns: the URL or commit info string returned by the upload
        """
        from huggingface_hub import HfApi

        api = HfApi(token=token)
        api.create_repo(repo_id=repo_id, private=private, exist_ok=True)
        with tempfile.TemporaryDirectory() as tmp:
            folder = self.save_pretrained(Path(tmp) / "model")
            info = api.upload_folder(folder_path=str(folder), repo_id=repo_id,
                                     commit_message=commit_message, revision=revision)
        logger.info("pushed kgt5mm model to %s", repo_id)
        return str(info)

    # ------------------------------------------------------------------ loading
    @classmethod
    def from_pretrained(cls, path_or_id: str | Path, *, revision: str | None = None,
                        token: str | None = None, device: str | None = None) -> KGT5MMModel:
        """Load a folder written by :meth:`save_pretrained`, or download a Hub repo of one.

        A local folder never touches the network; anything else is treated as a Hub id and
        fetched with ``huggingface_hub.snapshot_download``.
        """
        folder = Path(path_or_id)
        if not folder.is_dir():
            if folder.exists() or str(path_or_id).startswith((".", "/")):
                raise KGT5MMError(f"{str(path_or_id)!r} is not a kgt5mm model folder")
            from huggingface_hub import snapshot_download

            try:
                folder = Path(snapshot_download(repo_id=str(path_or_id), revision=revision, token=token))
            except Exception as error:  # network, auth, missing repo: one clear message
                raise KGT5MMError(f"cannot download {str(path_or_id)!r} from the Hub: {error}") from error
        for name in (CONFIG_FILE, ENTITY_FILE):
            if not (folder / name).is_file():
                raise KGT5MMError(f"{folder} is not a kgt5mm model folder: {name} is missing")
        meta = json.loads((folder / CONFIG_FILE).read_text())
        if int(meta.get("format_version", 0)) > FORMAT_VERSION:
            raise KGT5MMError(f"{folder}: format version {meta['format_version']} is newer than "
                              f"this kgt5mm supports ({FORMAT_VERSION})")
        table = json.loads((folder / ENTITY_FILE).read_text(encoding="utf-8"))
        from transformers import AutoModelForSeq2SeqLM

        from kgt5mm.modeling import load_tokenizer

        model = AutoModelForSeq2SeqLM.from_pretrained(str(folder))
        if device is not None:
            model.to(device)
        model.eval()
        tokenizer = load_tokenizer(folder)
        config = meta.get("config") or {}
        context = config.get("context") or {}
        if context.get("caption_files"):  # saved inside the folder: make them findable from anywhere
            context["caption_files"] = [str(folder / p) if (folder / p).is_file() else p
                                        for p in context["caption_files"]]
        return cls(model, tokenizer, config=config,
                   entity_names=table["entity_names"], entity_ids=table.get("entity_ids"),
                   dataset=meta.get("dataset"), metrics=meta.get("metrics") or {},
                   metrics_split=meta.get("metrics_split"))

    # ------------------------------------------------------------------ prediction
    def load_graph(self, *, data_dir: str | Path | None = None):
        """The knowledge graph named in the config (``load_graph(dataset, data_dir=...)``)."""
        from kgt5mm.data import load_graph

        if not self.dataset:
            raise KGT5MMError("this model names no dataset: pass kg= explicitly")
        data = self.config.get("data") or {}
        data_dir = data_dir if data_dir is not None else data.get("data_dir")
        kg = load_graph(self.dataset, data_dir=data_dir) if data_dir else load_graph(self.dataset)
        self._check_graph(kg)
        return kg

    def _check_graph(self, kg) -> None:
        if list(kg.entity_names) != self.entity_names:
            raise KGT5MMError(
                f"graph {getattr(kg, 'name', '?')!r} has other entity names than the model "
                f"({kg.num_entities} vs {len(self.entity_names)} entities, or different order)"
            )

    def context_builder(self, kg):
        """The :class:`~kgt5mm.context.ContextBuilder` with the saved context settings."""
        from kgt5mm.context import ContextBuilder, ContextConfig

        config = ContextConfig.from_dict(self.context_config) if self.context_config else ContextConfig()
        from kgt5mm.modeling.tokenizer import token_counter

        # the same token counter as training (kgt5mm.training), so sources are identical
        return ContextBuilder(kg, config, count_tokens=token_counter(self.tokenizer))

    def _prepare(self, kg):
        if kg is None:
            if self._kg is None:
                self._kg = self.load_graph()
            kg = self._kg
        else:
            self._check_graph(kg)
        if self._builder is None or self._builder.kg is not kg:
            self._builder = self.context_builder(kg)
        if self._trie is None:
            from kgt5mm.evaluation import build_trie

            self._trie = build_trie(self.model, self.tokenizer, self.entity_names)
        return kg

    def predict(self, queries, kg=None, top_k: int | None = None, *, num_beams: int | None = None,
                batch_size: int | None = None, candidate_views: int | None = None,
                accelerator=None) -> list[list[dict[str, Any]]]:
        """Ranked candidates of each query (unfiltered).

        :param queries: ``(n, 2)``/``(n, 3)`` int array of ``(entity, query_relation)`` ids, or
            tuples ``(entity, relation[, direction])`` by names/ids (see :func:`parse_queries`)
        :param kg: the graph (default: the dataset named in the config, loaded once)
        :param top_k: candidates per query; ``num_beams`` defaults to ``top_k``; both, and
            ``batch_size`` and ``candidate_views``, default to the settings saved with the
            model (:meth:`eval_config`)
        :returns: per query, a list of ``{"rank", "entity", "entity_id", "name", "score"}``
        """
        from kgt5mm.evaluation import predict_candidates

        kg = self._prepare(kg)
        rows = parse_queries(queries, kg)
        config = self.eval_config(num_beams=num_beams or top_k, top_k=top_k, batch_size=batch_size,
                                  candidate_views=candidate_views, filter_aware_beams=False)
        preds = predict_candidates(self.model, self.tokenizer, kg, self._builder, rows,
                                   config=config, trie=self._trie, accelerator=accelerator)
        k = config.top_k  # candidate views may list more (see merge_candidate_scores)
        return candidates_as_records(preds.entities[:, :k], preds.scores[:, :k], self.entity_ids,
                                     self.entity_names)

    def eval_config(self, **overrides: Any):
        """The saved evaluation settings (``config["eval"]``) with ``overrides`` applied.

        Overrides that are ``None`` are ignored. Sources are cut at the training length
        (``train.max_source_length``) unless the eval settings name their own, so the model
        reads the same sources it was trained and validated on.
        """
        from dataclasses import replace

        from kgt5mm.evaluation import EvalConfig

        saved = self.config.get("eval") or {}
        config = EvalConfig.from_dict(saved) if saved else EvalConfig()
        config = replace(config, **{k: v for k, v in overrides.items() if v is not None})
        config = config.with_source_limit((self.config.get("train") or {}).get("max_source_length"))
        config.validate()
        return config

    def evaluate(self, *, split: str = "test", kg=None, config=None, accelerator=None):
        """Filtered evaluation on ``split`` (see :func:`kgt5mm.evaluation.evaluate`).

        :param config: an :class:`~kgt5mm.evaluation.EvalConfig` (default: :meth:`eval_config`,
            the settings saved with the model)
        """
        from kgt5mm.evaluation import evaluate

        kg = self._prepare(kg)
        if config is None:
            config = self.eval_config()
        return evaluate(self.model, self.tokenizer, kg, self._builder, split=split, config=config,
                        accelerator=accelerator, trie=self._trie)


def candidates_as_records(entities: np.ndarray, scores: np.ndarray, entity_ids: Sequence[str],
                          entity_names: Sequence[str]) -> list[list[dict[str, Any]]]:
    """``(n, k)`` candidate ids and scores as lists of dicts (empty slots dropped)."""
    out = []
    for ents, scs in zip(entities, scores, strict=True):
        out.append([
            {"rank": j + 1, "entity": int(e), "entity_id": entity_ids[e], "name": entity_names[e],
             "score": float(s)}
            for j, (e, s) in enumerate(zip(ents, scs, strict=True)) if e >= 0
        ])
    return out


_DIRECTIONS = {None: False, "": False, "tail": False, "head": True, "inverse": True}


def _query_relation(kg, value, direction: str | None) -> int:
    if direction not in _DIRECTIONS:
        raise KGT5MMError(f"direction must be 'tail' or 'head', got {direction!r}")
    return kg.resolve_query_relation(value, inverse=_DIRECTIONS[direction])


def parse_queries(queries, kg) -> np.ndarray:
    """Normalise queries to an ``(n, 3)`` int64 array ``(entity, query_relation, -1)``.

    Accepts an int array ``(n, 2)``/``(n, 3)`` of ids, or tuples ``(entity, relation)`` /
    ``(entity, relation, direction)`` where entity is an id, a name or an external id,
    relation is a query relation id ``q`` or a relation id string, and direction is
    ``"tail"`` (predict the tail, default) or ``"head"`` (predict the head: ``q + R``).
    """
    if isinstance(queries, np.ndarray) and queries.dtype.kind in "iu":
        rows = queries.reshape(len(queries), -1).astype(np.int64)
        out = np.full((len(rows), 3), -1, dtype=np.int64)
        out[:, :2] = rows[:, :2]
        if len(rows) and ((out[:, 0] < 0) | (out[:, 0] >= kg.num_entities)).any():
            raise KGT5MMError("query entity ids outside the graph")
        if len(rows) and ((out[:, 1] < 0) | (out[:, 1] >= 2 * kg.num_relations)).any():
            raise KGT5MMError("query relation ids outside 0..2R-1")
        return out
    out = []
    for row in queries:
        row = tuple(row)
        if len(row) not in (2, 3):
            raise KGT5MMError(f"a query is (entity, relation[, direction]), got {row!r}")
        direction = row[2] if len(row) == 3 else None
        out.append((kg.resolve_entity(row[0]), _query_relation(kg, row[1], direction), -1))
    return np.asarray(out, dtype=np.int64).reshape(-1, 3)

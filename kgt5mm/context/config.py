"""Settings of the context builder (:class:`ContextConfig`) and its marker tokens.

The config is a flat dataclass; every field has a default and ``help`` metadata so the training
config (``kgt5mm.config.Config``) can compose it, load it from YAML, override it from the
command line and save it inside every checkpoint. The source-string layout is the versioned
prompt ``context_source`` (``prompts/context_source.yaml``); the config records its id and
version so a trained model can be traced to the exact layout.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any, Literal

from kgt5mm.errors import ConfigError

__all__ = ["ContextConfig", "SPECIAL_TOKENS", "NeighbourSelection"]

#: marker tokens of the source layout (prompts/context_source.yaml); the tokenizer adds them as
#: user-defined symbols so each is one token and never split or merged with its neighbours
SPECIAL_TOKENS: tuple[str, ...] = ("<query>", "<rel>", "<nbr>", "<cap>", "<desc>", "<vlm>", "<ex>")

NeighbourSelection = Literal["relevance", "random"]


@dataclass
class ContextConfig:
    """How the source string of a query ``(entity, query_relation, ?)`` is built."""

    budget_tokens: int = field(
        default=256,
        metadata={"help": "maximum tokens of the source string (counted with count_tokens, or "
                          "whitespace words without a tokenizer); reserve room for EOS yourself"},
    )
    neighbour_selection: str = field(
        default="relevance",
        metadata={"help": "'relevance': neighbour edges ranked by train co-occurrence statistics "
                          "with the query relation; 'random': seeded shuffle (ablation)"},
    )
    max_neighbours: int = field(
        default=32, metadata={"help": "at most this many neighbour edges are considered"}
    )
    priority_neighbours: int = field(
        default=8,
        metadata={"help": "the most relevant this many neighbour edges are filled before the "
                          "description; the rest after descriptions and captions"},
    )
    drop_known_answers: bool = field(
        default=True,
        metadata={"help": "leave out neighbour edges whose neighbour is another known TRAIN answer "
                          "of (entity, query_relation): ranking filters those answers anyway"},
    )
    hide_other_candidates: bool = field(
        default=False,
        metadata={"help": "while training (exclude_edge given), leave out neighbour edges to "
                          "entities other than the answer whose relation predicts the query "
                          "relation (relevance >= candidate_confidence). In the train graph such "
                          "a neighbour is often a held-out answer (its inverse-relation twin is "
                          "a train edge); shown as a non-answer in training, it teaches the model "
                          "to rank that answer low. Evaluation contexts are unchanged"},
    )
    show_train_answers: int = field(
        default=0,
        metadata={"help": "while training (exclude_edge given, needs drop_known_answers), list up "
                          "to this many other train answers of the query the way a held-out "
                          "answer is listed at evaluation: through their edges of other "
                          "relations (e.g. the inverse twin), never the query-relation edge. "
                          "Kept even under hide_other_candidates, so training contexts show "
                          "several answer candidates and the model learns to spread probability "
                          "over them instead of copying the first (WN9-IMG hour recipe, k=2: test "
                          "MRR 0.686 vs 0.725 without; BENCHMARKS.md). 0 = off"},
    )
    mask_query_entity: float = field(
        default=0.0,
        metadata={"help": "leave the query entity's name out of the query piece ('<query> <rel> "
                          "{relation}'), so the model cannot answer from what it memorized "
                          "about that entity and must read the answer from the context: each "
                          "training source with this probability (seeded per query and epoch), "
                          "every evaluation source when it is 1. For graphs whose held-out "
                          "answers are listed as neighbours (WordNet-like); 0 = off"},
    )
    candidate_confidence: float = field(
        default=0.5,
        metadata={"help": "relevance (pair confidence conf(q' => q), see relation_relevance) "
                          "from which a neighbour edge counts as an answer candidate for "
                          "hide_other_candidates"},
    )
    dedupe_neighbours: bool = field(
        default=False,
        metadata={"help": "list each neighbour entity once, through its most relevant edge "
                          "(saves budget where a pair is joined by a relation and its inverse; "
                          "no gain in answer coverage measured with relevance selection)"},
    )
    include_description: bool = field(
        default=True, metadata={"help": "add the head's textual description (kg.entity_descriptions)"}
    )
    include_vlm_text: bool = field(
        default=True,
        metadata={"help": "add the head's VLM-written text (caption store, else kg.entity_vlm_text)"},
    )
    include_captions: bool = field(
        default=True, metadata={"help": "add link-aware captions after their neighbour edges"}
    )
    include_examples: bool = field(
        default=True, metadata={"help": "add example train triples of the query relation"}
    )
    num_examples: int = field(
        default=2, metadata={"help": "number of example triples (not involving the head)"}
    )
    caption_files: list[str] = field(
        default_factory=list,
        metadata={"help": "caption caches written by `kgt5mm caption` and/or user caption files "
                          "(.jsonl, .tsv, ficha_vlm_desc_*) loaded into a CaptionStore when the "
                          "builder is given none"},
    )
    seed: int = field(
        default=0,
        metadata={"help": "seed of all sampling; the RNG of a query is derived from "
                          "hash(seed, epoch, entity, query_relation)"},
    )
    layout_prompt: str = field(
        default="context_source", metadata={"help": "id of the source-layout prompt in prompts/"}
    )
    layout_prompt_version: int | None = field(
        default=None,
        metadata={"help": "version of the layout prompt; None = the installed one (recorded by "
                          "resolved()); a mismatch with the installed file is an error"},
    )

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise :class:`~kgt5mm.errors.ConfigError` for an invalid value."""
        if self.budget_tokens < 1:
            raise ConfigError(f"context.budget_tokens must be >= 1, got {self.budget_tokens}")
        if self.neighbour_selection not in ("relevance", "random"):
            raise ConfigError(
                "context.neighbour_selection must be 'relevance' or 'random', "
                f"got {self.neighbour_selection!r}"
            )
        if not 0 < self.candidate_confidence <= 1.5:
            raise ConfigError(
                f"context.candidate_confidence must be in (0, 1.5], got {self.candidate_confidence}"
            )
        if not 0.0 <= self.mask_query_entity <= 1.0:
            raise ConfigError(
                f"context.mask_query_entity must be in [0, 1], got {self.mask_query_entity}"
            )
        if self.show_train_answers and not self.drop_known_answers:
            raise ConfigError(
                "context.show_train_answers needs context.drop_known_answers=true (without it "
                "every train answer is listed already)"
            )
        for name in ("max_neighbours", "priority_neighbours", "num_examples", "show_train_answers"):
            if getattr(self, name) < 0:
                raise ConfigError(f"context.{name} must be >= 0, got {getattr(self, name)}")

    def resolved(self) -> ContextConfig:
        """A copy whose ``layout_prompt_version`` names the installed layout prompt."""
        from kgt5mm.context.prompts import load_prompt

        prompt = load_prompt(self.layout_prompt)
        if self.layout_prompt_version is not None and self.layout_prompt_version != prompt.version:
            raise ConfigError(
                f"context.layout_prompt {self.layout_prompt!r} is version {prompt.version} here, "
                f"but the config asks for version {self.layout_prompt_version}"
            )
        return replace(self, layout_prompt_version=prompt.version)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (YAML/JSON serialisable)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ContextConfig:
        """Inverse of :meth:`to_dict`; unknown keys are a :class:`ConfigError`."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"unknown context config keys {unknown}; known: {sorted(known)}")
        data = dict(data)
        if "caption_files" in data:
            data["caption_files"] = [str(p) for p in data["caption_files"] or []]
        return cls(**data)

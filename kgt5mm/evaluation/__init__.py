"""Filtered link-prediction evaluation: ranks as data, metrics as pure functions, the evaluator.

::

    from kgt5mm.evaluation import EvalConfig, evaluate
    result = evaluate(model, tokenizer, kg, builder, split="test", config=EvalConfig())
    result.metrics["both.realistic.mrr"]; result.save("eval_out")

    from kgt5mm.evaluation import rank_from_scores, compute_metrics
    ranks = rank_from_scores(scores, targets, filter_mask)     # any (n, E) score matrix
    compute_metrics(ranks, num_relations=R)
"""

from kgt5mm.evaluation.evaluator import (
    EvalConfig,
    EvaluationResult,
    Predictions,
    answer_in_context,
    build_trie,
    evaluate,
    merge_candidate_scores,
    other_known_answers,
    predict_candidates,
    query_beam_widths,
    select_queries,
)
from kgt5mm.evaluation.metrics import (
    HITS_AT,
    METRIC_NAMES,
    SIDES,
    compute_metrics,
    hits_at_k,
    mean_rank,
    mean_reciprocal_rank,
    side_mask,
)
from kgt5mm.evaluation.ranks import (
    RANK_TYPES,
    Ranks,
    filter_mask,
    rank_from_scores,
    ranks_from_beams,
)

__all__ = [
    "EvalConfig",
    "EvaluationResult",
    "HITS_AT",
    "METRIC_NAMES",
    "Predictions",
    "RANK_TYPES",
    "Ranks",
    "SIDES",
    "answer_in_context",
    "build_trie",
    "compute_metrics",
    "evaluate",
    "filter_mask",
    "hits_at_k",
    "mean_rank",
    "merge_candidate_scores",
    "mean_reciprocal_rank",
    "other_known_answers",
    "predict_candidates",
    "query_beam_widths",
    "rank_from_scores",
    "ranks_from_beams",
    "select_queries",
    "side_mask",
]

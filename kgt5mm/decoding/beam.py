"""Trie-constrained batched beam search and exhaustive (teacher-forced) entity scoring.

Both functions score a candidate entity the same way: the sum over its target tokens (name
ids + EOS) of ``log_softmax`` over the *full* vocabulary, with no renormalization over the
allowed tokens and no length penalty. Beam search is therefore exact whenever ``num_beams``
is at least the number of entities (every valid prefix survives), which is how it is tested
against :func:`score_all_entities`, the ground truth on small graphs.

Implementation notes:

- the encoder runs once per batch; the first decoder step runs on ``B`` rows, so the
  cross-attention keys/values are computed once per query, not once per beam. On T5/mT5 they
  also stay per query: the decoder's cross-attention reads them grouped by query
  (:class:`_GroupedCrossAttention`) instead of copying them out to every beam row; other
  encoder-decoders get them indexed out to the live rows when the rows change;
- candidates are sparse: only the trie's allowed ``(row, token)`` pairs are scored
  (``logit - logsumexp(logits)``) and ranked per query with two stable sorts. Steps on wide
  trie nodes (the root of a large trie) first cut each row to its own ``num_beams`` best
  children with a dense top-k, so the cost per step does not grow with the number of names;
- beams are ragged: one decoder row per live hypothesis (``row_query`` maps rows to queries).
  A hypothesis is dropped as soon as it cannot beat its query's ``top_k``-th finished score
  (log-probabilities only decrease as a sequence grows), so finished queries and hopeless
  beams cost nothing; the result is unchanged by this pruning. The cross-attention cache is
  only re-indexed when the row-to-query map changes.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch
from transformers.cache_utils import DynamicCache, EncoderDecoderCache
from transformers.modeling_outputs import BaseModelOutput

from kgt5mm.decoding.trie import EntityTrie
from kgt5mm.errors import KGT5MMError

__all__ = [
    "BeamResult",
    "constrained_beam_search",
    "score_all_entities",
    "score_paired_entities",
    "unwrap_seq2seq",
]

logger = logging.getLogger(__name__)

NEG_INF = float("-inf")


@dataclass
class BeamResult:
    """Top-k entities per query from :func:`constrained_beam_search`.

    :ivar entities: ``(B, k)`` long, entity ids best first, ``-1`` where fewer than ``k``
        entities were found
    :ivar scores: ``(B, k)`` float32 summed token log-probabilities, ``-inf`` where empty
    """

    entities: torch.Tensor
    scores: torch.Tensor


def unwrap_seq2seq(model: torch.nn.Module) -> torch.nn.Module:
    """Return the module that exposes ``get_encoder`` (unwraps DDP / torch.compile wrappers)."""
    seen = model
    while not hasattr(seen, "get_encoder") and hasattr(seen, "module"):
        seen = seen.module
    if not hasattr(seen, "get_encoder"):
        raise KGT5MMError(f"{type(model).__name__} is not an encoder-decoder model (no get_encoder)")
    return seen


def _decoder_start(model: torch.nn.Module) -> int:
    config = model.config
    start = getattr(config, "decoder_start_token_id", None)
    if start is None:
        start = config.pad_token_id
    if start is None:
        raise KGT5MMError("model config defines neither decoder_start_token_id nor pad_token_id")
    return int(start)


def _encode(model, input_ids, attention_mask) -> torch.Tensor:
    return model.get_encoder()(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state


def _first_step(model, hidden, attention_mask, start: int):
    """Run the decoder start token on ``B`` rows; returns float logits ``(B, V)`` and the cache."""
    batch = hidden.shape[0]
    cache = EncoderDecoderCache(DynamicCache(), DynamicCache())
    decoder_input = torch.full((batch, 1), start, dtype=torch.long, device=hidden.device)
    out = model(
        encoder_outputs=BaseModelOutput(last_hidden_state=hidden),
        attention_mask=attention_mask,
        decoder_input_ids=decoder_input,
        past_key_values=cache,
        use_cache=True,
    )
    return out.logits[:, -1].float(), out.past_key_values


# When the rows have more than _WIDE * num_beams allowed children each on average, and at least
# 1/_DENSE of the (rows, vocabulary) grid is allowed (wide nodes, e.g. the root of a large
# trie), each row is first cut to its own best num_beams children (+ its EOS edge) with a dense
# top-k (see _row_best_candidates); sparser steps sort the allowed candidates directly, which
# is cheaper there.
_WIDE = 4
_DENSE = 16


def _drop_hopeless(rows, edges, toks, scores, query, row_query, beams_q, eos: int):
    """Drop open candidates that cannot be among their query's best ``num_beams`` (exact).

    If a query has at least ``num_beams`` rows with an open (non-EOS) candidate, each such row
    holds a candidate scoring at least the row's best, so the query's ``num_beams``-th best open
    score is at least the smallest of those row bests: open candidates below it are dropped
    before the sort. EOS candidates are all kept. A candidate kept before is kept now, in the
    same relative order, so the search's result is unchanged; only the sort gets smaller.
    """
    n_rows, batch = len(row_query), len(beams_q)
    is_open = toks != eos
    row_best = torch.full((n_rows,), NEG_INF, device=scores.device).scatter_reduce(
        0, rows[is_open], scores[is_open], reduce="amax")
    has_open = torch.isfinite(row_best)
    floor = torch.full((batch,), float("inf"), device=scores.device).scatter_reduce(
        0, row_query[has_open], row_best[has_open], reduce="amin")
    enough = torch.bincount(row_query[has_open], minlength=batch) >= beams_q
    floor = torch.where(enough, floor, torch.full_like(floor, NEG_INF))
    keep = ~is_open | (scores >= floor[query])
    return rows[keep], edges[keep], toks[keep], scores[keep], query[keep]


def _row_best_candidates(trie, logits, states, k: int):
    """Allowed ``(row, edge)`` pairs cut to each row's ``k`` best children plus its EOS edge.

    Exact for the search: a query keeps at most ``k`` open hypotheses, so a continuation that is
    not among the ``k`` best of its own row can never be kept, and each row has at most one EOS
    edge, which is always kept. Wide trie nodes (the root of a large trie has up to ``V``
    children) then cost a dense mask built once per distinct state and one ``topk`` over the
    logits the decoder computed anyway, instead of enumerating and sorting every allowed child
    of every row: the per-step cost stops growing with the number of names.
    Returns the pairs in ``(row, edge)`` order, like :meth:`EntityTrie.allowed_edges`.
    """
    t = trie.to(logits.device)
    n_rows, vocab = logits.shape
    uniq, inverse = torch.unique(states, return_inverse=True)
    u_rows, u_edges = trie.allowed_edges(uniq)
    toks = t["edge_token"][u_edges].long()
    is_eos = toks == trie.eos_token_id
    allowed = torch.zeros(len(uniq), vocab, dtype=torch.bool, device=logits.device)
    allowed[u_rows[~is_eos], toks[~is_eos]] = True
    top_v, top_t = logits.masked_fill(~allowed[inverse], NEG_INF).topk(min(k, vocab), dim=1)
    found = torch.isfinite(top_v)
    best_rows = torch.arange(n_rows, device=logits.device).unsqueeze(1).expand_as(top_t)[found]
    best_edges = torch.searchsorted(t["edge_key"], states[best_rows] * trie.vocab_size + top_t[found])
    eos_edge = torch.full((len(uniq),), -1, dtype=torch.long, device=logits.device)
    eos_edge[u_rows[is_eos]] = u_edges[is_eos]
    row_eos = eos_edge[inverse]
    eos_rows = torch.nonzero(row_eos >= 0).squeeze(1)
    rows = torch.cat([best_rows, eos_rows])
    edges = torch.cat([best_edges, row_eos[eos_rows]])
    order = torch.argsort(rows * len(t["edge_key"]) + edges)
    return rows[order], edges[order]


class _GroupedCrossAttention:
    """T5 cross-attention over per-query keys/values for ragged beam rows (a context manager).

    Every beam of a query attends to the same encoder keys/values. The generic path copies
    them out to each live row (``reorder_cache``) whenever the rows change, which on a t5-small
    shape is about a sixth of the decoding time. Inside this context the cross-attention
    modules of a T5/mT5 decoder instead read the cache's per-query ``(B, H, S, d)`` tensors and
    run one attention call per step with each query's beams stacked as its attention queries:
    the same arithmetic per row, no copy. Other architectures keep the generic path
    (:meth:`supports` is false).
    """

    _CLASSES = {"T5Attention", "MT5Attention"}

    def __init__(self, model, key_mask: torch.Tensor) -> None:
        self.modules = self.cross_modules(model)
        # additive (B, 1, 1, S) mask over each query's source tokens
        self.bias = torch.zeros(key_mask.shape, dtype=torch.float32, device=key_mask.device)
        self.bias = self.bias.masked_fill(key_mask == 0, torch.finfo(torch.float32).min)[:, None, None, :]
        self.row_query = self.row_slot = None
        self.width = 0

    @classmethod
    def cross_modules(cls, model) -> list | None:
        decoder = getattr(model, "decoder", None)
        blocks = getattr(decoder, "block", None)
        if blocks is None:
            return None
        try:
            modules = [block.layer[1].EncDecAttention for block in blocks]
        except (AttributeError, IndexError):
            return None
        if not all(type(m).__name__ in cls._CLASSES and m.layer_idx is not None for m in modules):
            return None
        return modules

    @classmethod
    def supports(cls, model) -> bool:
        return cls.cross_modules(model) is not None

    def set_rows(self, row_query: torch.Tensor, num_queries: int) -> None:
        """Rows are sorted by query; each row gets a slot within its query's group."""
        counts = torch.bincount(row_query, minlength=num_queries)
        start = torch.cumsum(counts, 0) - counts
        self.row_query = row_query
        self.row_slot = torch.arange(len(row_query), device=row_query.device) - start[row_query]
        self.width = int(counts.max())

    def _forward(self, module, hidden_states, mask=None, key_value_states=None,
                 position_bias=None, past_key_values=None, **kwargs):
        layer = past_key_values.cross_attention_cache.layers[module.layer_idx]
        keys, values = layer.keys, layer.values  # (B, H, S, d): per query, never reordered
        rows = hidden_states.shape[0]
        heads, dim = module.n_heads, module.key_value_proj_dim
        q = module.q(hidden_states).view(rows, heads, dim)
        grouped = q.new_zeros(keys.shape[0], self.width, heads, dim)
        grouped[self.row_query, self.row_slot] = q
        out = torch.nn.functional.scaled_dot_product_attention(
            grouped.transpose(1, 2), keys, values, attn_mask=self.bias.to(q.dtype),
            scale=module.scaling,
        )
        out = out.transpose(1, 2)[self.row_query, self.row_slot].reshape(rows, 1, heads * dim)
        return module.o(out), position_bias, None

    def __enter__(self):
        for module in self.modules:
            module.forward = lambda *a, _m=module, **kw: self._forward(_m, *a, **kw)
        return self

    def __exit__(self, *exc) -> None:
        for module in self.modules:
            del module.forward  # back to the class's forward


def _check_vocab(trie: EntityTrie, vocab: int) -> None:
    if trie.vocab_size != vocab:
        raise KGT5MMError(
            f"trie built for vocabulary size {trie.vocab_size}, model outputs {vocab} logits"
        )


@torch.inference_mode()
def constrained_beam_search(
    model: torch.nn.Module,
    trie: EntityTrie,
    *,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor | None = None,
    num_beams: int | torch.Tensor = 10,
    top_k: int | torch.Tensor | None = None,
    eos_within_top_beams: bool = False,
) -> BeamResult:
    """Top-``top_k`` entities per source by trie-constrained beam search.

    :param model: a T5-style encoder-decoder (``get_encoder``, cache-aware ``forward``)
    :param trie: entity trie whose ``vocab_size`` equals the model's logit dimension
    :param input_ids: ``(B, S)`` source token ids
    :param attention_mask: ``(B, S)`` source mask (default: all ones)
    :param num_beams: open hypotheses kept per query at each step; an int, or a ``(B,)``
        tensor giving each query its own width (queries never compete for beams)
    :param top_k: finished entities returned per query (default ``num_beams``); may exceed
        ``num_beams`` (finished entities are pooled separately from open beams); an int or a
        ``(B,)`` tensor
    :param eos_within_top_beams: transformers-compatible pooling: an EOS continuation is kept
        only when it ranks among the step's ``num_beams`` best candidates (as in
        ``model.generate``). The default keeps every EOS continuation, which never finds a
        worse top-k (used by the benchmark to check identical outputs against ``generate``)
    :returns: :class:`BeamResult` with ``(B, max(top_k))`` entities and scores, best first
        (``-1`` / ``-inf`` past a query's own ``top_k``)
    """
    model = unwrap_seq2seq(model)
    device = input_ids.device
    if attention_mask is None:
        attention_mask = torch.ones_like(input_ids)
    batch = input_ids.shape[0]
    beams_q = torch.as_tensor(num_beams, dtype=torch.long, device=device).expand(batch)
    topk_q = beams_q if top_k is None else torch.as_tensor(top_k, dtype=torch.long, device=device).expand(batch)
    if batch and (int(beams_q.min()) < 1 or int(topk_q.min()) < 1):
        raise KGT5MMError(f"num_beams and top_k must be >= 1, got {num_beams}, {top_k}")
    top_k = int(topk_q.max()) if batch else 1
    eos = trie.eos_token_id
    hidden = _encode(model, input_ids, attention_mask)
    logits, cache = _first_step(model, hidden, attention_mask, _decoder_start(model))
    _check_vocab(trie, logits.shape[1])
    edge_token = trie.to(device)["edge_token"]
    node_entity = trie.to(device)["node_entity"]

    pool_scores = torch.full((batch, top_k), NEG_INF, device=device)
    pool_entities = torch.full((batch, top_k), -1, dtype=torch.long, device=device)
    # Ragged beams: one decoder row per live hypothesis; row_query maps rows to queries.
    row_query = torch.arange(batch, device=device)
    states = trie.root_states(batch, device)
    row_scores = torch.zeros(batch, device=device)
    hidden_q, mask_q = hidden, attention_mask  # per query (B rows)
    grouped = (_GroupedCrossAttention(model, attention_mask)
               if _GroupedCrossAttention.supports(model) else None)
    k = int(beams_q.max()) if batch else 1  # the widest query's beam
    for _step in range(trie.max_length + 1):
        # Sparse candidates: only the allowed (row, token) pairs, scored with log_softmax over
        # the full vocabulary (logit - logsumexp), no renormalization over allowed tokens.
        lse = torch.logsumexp(logits, dim=-1)
        n_cand = int(trie.num_children(states).sum())
        if n_cand > _WIDE * k * len(states) and _DENSE * n_cand > logits.numel():
            rows, edges = _row_best_candidates(trie, logits, states, k)
        else:
            rows, edges = trie.allowed_edges(states)
        toks = edge_token[edges].long()
        scores = row_scores[rows] + (logits[rows, toks] - lse[rows])
        query = row_query[rows]
        if len(rows) > _WIDE * k * batch:
            rows, edges, toks, scores, query = _drop_hopeless(
                rows, edges, toks, scores, query, row_query, beams_q, eos)
        # Rank candidates within their query: best first (stable sorts, no Python loop).
        order = torch.argsort(scores, descending=True, stable=True)
        order = order[torch.argsort(query[order], stable=True)]
        rows, edges, toks, scores, query = rows[order], edges[order], toks[order], scores[order], query[order]
        counts = torch.bincount(query, minlength=batch)
        seg_start = torch.cumsum(counts, 0) - counts
        rank_all = torch.arange(len(query), device=device) - seg_start[query]
        is_eos = toks == eos
        not_eos = (~is_eos).long()
        before = torch.cumsum(not_eos, 0) - not_eos  # open candidates before this one
        rank_open = before - before[seg_start[query]] if len(query) else before
        # Finished hypotheses (EOS): each is a distinct entity; pooled per query.
        take = is_eos & (rank_all < beams_q[query]) if eos_within_top_beams else is_eos
        if bool(take.any()):
            fq, fs = query[take], scores[take]
            fe = node_entity[edges[take] + 1].long()
            frank = rank_all[take]  # distinct per query: a dense slot per finished candidate
            width = int(frank.max()) + 1
            new_s = torch.full((batch, width), NEG_INF, device=device)
            new_e = torch.full((batch, width), -1, dtype=torch.long, device=device)
            new_s[fq, frank] = fs
            new_e[fq, frank] = fe
            merged_s = torch.cat([pool_scores, new_s], dim=1)
            merged_e = torch.cat([pool_entities, new_e], dim=1)
            pool_scores, best_i = merged_s.topk(top_k, dim=1)
            pool_entities = merged_e.gather(1, best_i)
        # Open hypotheses: the best num_beams non-EOS continuations per query that can still
        # beat the query's top_k-th finished score (log-probabilities only decrease).
        kth = pool_scores.gather(1, (topk_q - 1).unsqueeze(1)).squeeze(1)
        keep = (~is_eos & (rank_open < beams_q[query]) & ~(scores < kth[query])
                & torch.isfinite(scores))
        if not bool(keep.any()):
            break
        src = rows[keep]
        new_query = query[keep]
        states = edges[keep] + 1
        tokens = toks[keep]
        row_scores = scores[keep]
        cache.self_attention_cache.reorder_cache(src)
        if grouped is not None:
            # cross-attention keys/values stay per query (B rows): see _GroupedCrossAttention
            grouped.set_rows(new_query, batch)
            with grouped:
                out = model(
                    # only its shape is read: keys/values come from the filled cache
                    encoder_outputs=BaseModelOutput(
                        last_hidden_state=hidden_q[:1].expand(len(new_query), -1, -1)),
                    decoder_input_ids=tokens.unsqueeze(1),
                    past_key_values=cache,
                    use_cache=True,
                )
        else:
            if _step == 0 or len(new_query) != len(row_query) or not bool((new_query == row_query).all()):
                cache.cross_attention_cache.reorder_cache(src)  # beams of a query share it
            out = model(
                encoder_outputs=BaseModelOutput(last_hidden_state=hidden_q.index_select(0, new_query)),
                attention_mask=mask_q.index_select(0, new_query),
                decoder_input_ids=tokens.unsqueeze(1),
                past_key_values=cache,
                use_cache=True,
            )
        row_query = new_query
        cache = out.past_key_values
        logits = out.logits[:, -1].float()
    beyond = torch.arange(top_k, device=device).unsqueeze(0) >= topk_q.unsqueeze(1)
    return BeamResult(entities=pool_entities.masked_fill(beyond, -1),
                      scores=pool_scores.masked_fill(beyond, NEG_INF))


@torch.inference_mode()
def score_all_entities(
    model: torch.nn.Module,
    trie: EntityTrie,
    *,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor | None = None,
    max_rows: int = 2048,
    entities: torch.Tensor | None = None,
) -> torch.Tensor:
    """Teacher-forced score of every entity for every source (the exhaustive ground truth).

    The score of entity ``e`` for source ``b`` is the sum over ``e``'s target tokens of
    ``log_softmax`` over the full vocabulary, exactly as in :func:`constrained_beam_search`.
    The encoder and the first decoder step (with its cross-attention keys/values) run once
    per source; entities are scored in chunks of at most ``max_rows`` decoder rows.

    :param input_ids: ``(B, S)`` source ids; :param attention_mask: ``(B, S)``
    :param entities: optional ``(C,)`` subset of entity ids to score (default: all ``E``)
    :returns: ``(B, E)`` float32 (or ``(B, C)`` for a subset)
    """
    model = unwrap_seq2seq(model)
    device = input_ids.device
    if attention_mask is None:
        attention_mask = torch.ones_like(input_ids)
    batch = input_ids.shape[0]
    if entities is None:
        entities = torch.arange(trie.num_entities, device=device)
    targets, lengths = _target_matrix(trie, entities.cpu())
    targets, lengths = targets.to(device), lengths.to(device)
    n_ent = targets.shape[0]
    state = _ForcedScorer(model, trie, input_ids, attention_mask)
    scores = torch.empty(batch, n_ent, device=device)
    chunk = max(1, max_rows // batch)
    for start in range(0, n_ent, chunk):
        tg = targets[start:start + chunk]
        ln = lengths[start:start + chunk]
        c = tg.shape[0]
        rows = torch.arange(batch, device=device).repeat_interleave(c)
        scores[:, start:start + c] = state.score(rows, tg.repeat(batch, 1), ln.repeat(batch)).reshape(batch, c)
    return scores


@torch.inference_mode()
def score_paired_entities(
    model: torch.nn.Module,
    trie: EntityTrie,
    *,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor | None = None,
    entities: torch.Tensor,
) -> torch.Tensor:
    """Teacher-forced score of one entity per source: ``entities[b]`` for source ``b``.

    The same score as :func:`score_all_entities` (and :func:`constrained_beam_search`) gives
    that entity for that source, at the cost of one decoder pass per source.

    :param input_ids: ``(B, S)`` source ids; :param attention_mask: ``(B, S)``
    :param entities: ``(B,)`` entity ids
    :returns: ``(B,)`` float32
    """
    model = unwrap_seq2seq(model)
    device = input_ids.device
    if attention_mask is None:
        attention_mask = torch.ones_like(input_ids)
    entities = torch.as_tensor(entities).reshape(-1)
    if entities.shape[0] != input_ids.shape[0]:
        raise ValueError(f"{entities.shape[0]} entities for {input_ids.shape[0]} sources")
    targets, lengths = _target_matrix(trie, entities.cpu())
    state = _ForcedScorer(model, trie, input_ids, attention_mask)
    rows = torch.arange(input_ids.shape[0], device=device)
    return state.score(rows, targets.to(device), lengths.to(device))


class _ForcedScorer:
    """Teacher forcing against one encoded batch of sources.

    The encoder and the first decoder step (with its cross-attention keys/values) run once per
    source; :meth:`score` then sums, for each ``(source row, target)`` pair, the target tokens'
    ``log_softmax`` over the full vocabulary (``logit - logsumexp``, summed step by step in the
    same order as the beam search).
    """

    def __init__(self, model, trie: EntityTrie, input_ids: torch.Tensor, attention_mask: torch.Tensor):
        self.model = model
        self.attention_mask = attention_mask
        self.hidden = _encode(model, input_ids, attention_mask)
        self.logits0, cache = _first_step(model, self.hidden, attention_mask, _decoder_start(model))
        _check_vocab(trie, self.logits0.shape[1])
        self.lse0 = torch.logsumexp(self.logits0, dim=-1)
        self.layers = []
        for layer in range(len(cache.self_attention_cache.layers)):
            s = cache.self_attention_cache.layers[layer]
            c = cache.cross_attention_cache.layers[layer]
            self.layers.append((s.keys, s.values, c.keys, c.values))

    def score(self, rows: torch.Tensor, targets: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """``(N,)`` scores of ``targets[i]`` (``(N, L)``, ``lengths[i]`` valid ids) for source ``rows[i]``."""
        width = targets.shape[1]
        total = self.logits0[rows, targets[:, 0]] - self.lse0[rows]
        if width > 1:
            step_cache = EncoderDecoderCache(
                [tuple(t.index_select(0, rows) for t in lay) for lay in self.layers])
            out = self.model(
                encoder_outputs=BaseModelOutput(last_hidden_state=self.hidden.index_select(0, rows)),
                attention_mask=self.attention_mask.index_select(0, rows),
                decoder_input_ids=targets[:, :-1],
                past_key_values=step_cache,
                use_cache=True,
            )
            step_logits = out.logits.float()  # (N, width - 1, V)
            # log_softmax over the full vocabulary as logit - logsumexp (same formula as the beam)
            tok = step_logits.gather(2, targets[:, 1:].unsqueeze(2)).squeeze(2)
            tok = tok - torch.logsumexp(step_logits, dim=-1)
            steps = torch.arange(1, width, device=targets.device).unsqueeze(0)
            tok = tok.masked_fill(~(steps < lengths.unsqueeze(1)), 0.0)
            for j in range(width - 1):  # sequential sum: same order as the beam search
                total = total + tok[:, j]
        return total


def _target_matrix(trie: EntityTrie, entities: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(C, L)`` target ids (padded with ``pad``) and ``(C,)`` lengths read from the trie."""
    import numpy as np

    parent, token = trie.parents_and_tokens()
    nodes = trie.entity_terminal[entities.numpy()]
    reversed_cols = []
    current = nodes.copy()
    while (current != 0).any():
        reversed_cols.append(np.where(current != 0, token[current], -1))
        current = np.where(current != 0, parent[current], 0)
    rev = np.stack(reversed_cols, axis=1) if reversed_cols else np.zeros((len(nodes), 0), np.int64)
    lengths = (rev >= 0).sum(axis=1)
    out = np.full(rev.shape, trie.pad_token_id, dtype=np.int64)
    for i, n in enumerate(lengths):  # reverse each row's valid part (rows are short)
        out[i, :n] = rev[i, :n][::-1]
    return torch.from_numpy(out), torch.from_numpy(lengths)

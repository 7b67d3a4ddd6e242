"""Trie-constrained batched beam search and exhaustive (teacher-forced) entity scoring.

Both functions score a candidate entity the same way: the sum over its target tokens (name
ids + EOS) of ``log_softmax`` over the *full* vocabulary, with no renormalization over the
allowed tokens and no length penalty. Beam search is therefore exact whenever ``num_beams``
is at least the number of entities (every valid prefix survives), which is how it is tested
against :func:`score_all_entities`, the ground truth on small graphs.

Implementation notes:

- the encoder runs once per batch; the first decoder step runs on ``B`` rows and its
  key/value cache (self- and cross-attention) is then indexed out to ``B * num_beams`` rows,
  so the cross-attention keys/values are computed once per query, not once per beam;
- after that only the self-attention cache is reordered (beams of a query share the same
  cross-attention cache); queries whose result is final are dropped from every tensor
  (``batch_select_indices``), so a batch costs what its longest *open* query costs;
- a query is final when it has ``top_k`` finished entities and no open beam scores above
  the ``top_k``-th of them (log-probabilities only decrease as a sequence grows).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch
from transformers.cache_utils import DynamicCache, EncoderDecoderCache
from transformers.modeling_outputs import BaseModelOutput

from kgt5mm.decoding.trie import EntityTrie
from kgt5mm.errors import KGT5MMError

__all__ = ["BeamResult", "constrained_beam_search", "score_all_entities", "unwrap_seq2seq"]

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
    num_beams: int = 10,
    top_k: int | None = None,
    eos_within_top_beams: bool = False,
) -> BeamResult:
    """Top-``top_k`` entities per source by trie-constrained beam search.

    :param model: a T5-style encoder-decoder (``get_encoder``, cache-aware ``forward``)
    :param trie: entity trie whose ``vocab_size`` equals the model's logit dimension
    :param input_ids: ``(B, S)`` source token ids
    :param attention_mask: ``(B, S)`` source mask (default: all ones)
    :param num_beams: open hypotheses kept per query at each step
    :param top_k: finished entities returned per query (default ``num_beams``); may exceed
        ``num_beams`` (finished entities are pooled separately from open beams)
    :param eos_within_top_beams: transformers-compatible pooling: an EOS continuation is kept
        only when it ranks among the step's ``num_beams`` best candidates (as in
        ``model.generate``). The default keeps every EOS continuation, which never finds a
        worse top-k (used by the benchmark to check identical outputs against ``generate``)
    :returns: :class:`BeamResult` with ``(B, top_k)`` entities and scores, best first
    """
    model = unwrap_seq2seq(model)
    top_k = num_beams if top_k is None else int(top_k)
    if num_beams < 1 or top_k < 1:
        raise KGT5MMError(f"num_beams and top_k must be >= 1, got {num_beams}, {top_k}")
    device = input_ids.device
    if attention_mask is None:
        attention_mask = torch.ones_like(input_ids)
    batch = input_ids.shape[0]
    eos = trie.eos_token_id
    hidden = _encode(model, input_ids, attention_mask)
    logits, cache = _first_step(model, hidden, attention_mask, _decoder_start(model))
    _check_vocab(trie, logits.shape[1])
    edge_token = trie.to(device)["edge_token"]
    node_entity = trie.to(device)["node_entity"]

    pool_scores = torch.full((batch, top_k), NEG_INF, device=device)
    pool_entities = torch.full((batch, top_k), -1, dtype=torch.long, device=device)
    open_queries = torch.arange(batch, device=device)  # global query id of each open query
    states = trie.root_states(batch, device)
    beam_scores = torch.zeros(batch, 1, device=device)  # (Q, beams): one beam at the root
    k = num_beams
    first = True
    for _step in range(trie.max_length + 1):
        n_open, beams = beam_scores.shape
        # Sparse candidates: only the allowed (row, token) pairs, scored with log_softmax over
        # the full vocabulary (logit - logsumexp), no renormalization over allowed tokens.
        lse = torch.logsumexp(logits, dim=-1)
        rows, edges = trie.allowed_edges(states)
        toks = edge_token[edges].long()
        scores = beam_scores.reshape(-1)[rows] + (logits[rows, toks] - lse[rows])
        query = torch.div(rows, beams, rounding_mode="floor")
        # Rank candidates within their query: best first (stable sorts, no Python loop).
        order = torch.argsort(scores, descending=True, stable=True)
        order = order[torch.argsort(query[order], stable=True)]
        rows, edges, toks, scores, query = rows[order], edges[order], toks[order], scores[order], query[order]
        counts = torch.bincount(query, minlength=n_open)
        seg_start = torch.cumsum(counts, 0) - counts
        rank_all = torch.arange(len(query), device=device) - seg_start[query]
        is_eos = toks == eos
        not_eos = (~is_eos).long()
        before = torch.cumsum(not_eos, 0) - not_eos  # open candidates before this one
        rank_open = before - before[seg_start[query]] if len(query) else before
        # Finished hypotheses (EOS): each is a distinct entity; pooled per query.
        take = is_eos & (rank_all < num_beams) if eos_within_top_beams else is_eos
        eos_s = torch.full((n_open * beams,), NEG_INF, device=device)
        eos_e = torch.full((n_open * beams,), -1, dtype=torch.long, device=device)
        eos_s[rows[take]] = scores[take]
        eos_e[rows[take]] = node_entity[edges[take] + 1].long()
        merged_s = torch.cat([pool_scores[open_queries], eos_s.reshape(n_open, beams)], dim=1)
        merged_e = torch.cat([pool_entities[open_queries], eos_e.reshape(n_open, beams)], dim=1)
        best_s, best_i = merged_s.topk(top_k, dim=1)
        pool_scores[open_queries] = best_s
        pool_entities[open_queries] = merged_e.gather(1, best_i)
        # Open hypotheses: the best num_beams non-EOS continuations per query; missing ones
        # are dead beams (score -inf, dead state, first row of the query).
        keep = ~is_eos & (rank_open < k)
        q_sel, r_sel = query[keep], rank_open[keep]
        new_scores = torch.full((n_open, k), NEG_INF, device=device)
        new_scores[q_sel, r_sel] = scores[keep]
        new_rows = (torch.arange(n_open, device=device) * beams).unsqueeze(1).repeat(1, k)
        new_rows[q_sel, r_sel] = rows[keep]
        new_states = torch.full((n_open, k), trie.dead_state, dtype=torch.long, device=device)
        new_states[q_sel, r_sel] = edges[keep] + 1
        new_tokens = torch.full((n_open, k), trie.pad_token_id, dtype=torch.long, device=device)
        new_tokens[q_sel, r_sel] = toks[keep]
        rows, states, tokens = new_rows.reshape(-1), new_states.reshape(-1), new_tokens.reshape(-1)
        # Which queries can still change: an open beam beats the top_k-th finished score.
        kth = best_s[:, -1]
        best_open = new_scores[:, 0]
        still_open = torch.isfinite(best_open) & ~(best_open < kth)
        if not bool(still_open.any()):
            break
        if first:
            cache.reorder_cache(rows)  # self and cross attention: B rows -> B * k rows
            hidden = hidden.index_select(0, torch.arange(n_open, device=device).repeat_interleave(k))
            attention_mask = attention_mask.repeat_interleave(k, dim=0)
            first = False
        else:
            cache.self_attention_cache.reorder_cache(rows)
        if not bool(still_open.all()):
            keep_q = torch.nonzero(still_open).squeeze(1)
            keep_rows = (keep_q.unsqueeze(1) * k + torch.arange(k, device=device)).reshape(-1)
            cache.batch_select_indices(keep_rows)
            hidden = hidden.index_select(0, keep_rows)
            attention_mask = attention_mask.index_select(0, keep_rows)
            states = states.index_select(0, keep_rows)
            tokens = tokens.index_select(0, keep_rows)
            new_scores = new_scores.index_select(0, keep_q)
            open_queries = open_queries.index_select(0, keep_q)
        beam_scores = new_scores
        out = model(
            encoder_outputs=BaseModelOutput(last_hidden_state=hidden),
            attention_mask=attention_mask,
            decoder_input_ids=tokens.unsqueeze(1),
            past_key_values=cache,
            use_cache=True,
        )
        cache = out.past_key_values
        logits = out.logits[:, -1].float()
    return BeamResult(entities=pool_entities, scores=pool_scores)


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
    n_ent, width = targets.shape
    hidden = _encode(model, input_ids, attention_mask)
    logits0, cache = _first_step(model, hidden, attention_mask, _decoder_start(model))
    _check_vocab(trie, logits0.shape[1])
    lse0 = torch.logsumexp(logits0, dim=-1)
    layers = []
    for layer in range(len(cache.self_attention_cache.layers)):
        s = cache.self_attention_cache.layers[layer]
        c = cache.cross_attention_cache.layers[layer]
        layers.append((s.keys, s.values, c.keys, c.values))
    scores = torch.empty(batch, n_ent, device=device)
    chunk = max(1, max_rows // batch)
    for start in range(0, n_ent, chunk):
        tg = targets[start:start + chunk]
        ln = lengths[start:start + chunk]
        c = tg.shape[0]
        rows = torch.arange(batch, device=device).repeat_interleave(c)
        first_tok = tg.repeat(batch, 1)[:, 0]
        total = logits0[rows, first_tok] - lse0[rows]
        if width > 1:
            step_cache = EncoderDecoderCache([tuple(t.index_select(0, rows) for t in lay) for lay in layers])
            out = model(
                encoder_outputs=BaseModelOutput(last_hidden_state=hidden.index_select(0, rows)),
                attention_mask=attention_mask.index_select(0, rows),
                decoder_input_ids=tg[:, :-1].repeat(batch, 1),
                past_key_values=step_cache,
                use_cache=True,
            )
            step_logits = out.logits.float()  # (B * c, width - 1, V)
            # log_softmax over the full vocabulary as logit - logsumexp (same formula as the beam)
            tok = step_logits.gather(2, tg[:, 1:].repeat(batch, 1).unsqueeze(2)).squeeze(2)
            tok = tok - torch.logsumexp(step_logits, dim=-1)
            valid = (torch.arange(1, width, device=device).unsqueeze(0) < ln.repeat(batch).unsqueeze(1))
            tok = tok.masked_fill(~valid, 0.0)
            for j in range(width - 1):  # sequential sum: same order as the beam search
                total = total + tok[:, j]
        scores[:, start:start + c] = total.reshape(batch, c)
    return scores


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

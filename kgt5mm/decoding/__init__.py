"""Constrained decoding: the entity-name trie, trie-constrained beam search, exhaustive scoring.

::

    from kgt5mm.decoding import EntityTrie, constrained_beam_search, score_all_entities
    trie = EntityTrie.from_sequences(encode_targets(tokenizer, kg.entity_names),
                                     vocab_size=V, eos_token_id=1, pad_token_id=0)
    top = constrained_beam_search(model, trie, input_ids=ids, attention_mask=mask,
                                  num_beams=10, top_k=10)      # top.entities, top.scores (B, k)
    exact = score_all_entities(model, trie, input_ids=ids, attention_mask=mask)   # (B, E)
"""

from kgt5mm.decoding.beam import (
    BeamResult,
    constrained_beam_search,
    score_all_entities,
    score_paired_entities,
    unwrap_seq2seq,
)
from kgt5mm.decoding.trie import EntityTrie, TrieLogitsProcessor

__all__ = [
    "BeamResult",
    "EntityTrie",
    "TrieLogitsProcessor",
    "constrained_beam_search",
    "score_all_entities",
    "score_paired_entities",
    "unwrap_seq2seq",
]

"""Entity-name trie over token ids, stored as flat arrays and stepped with tensor operations.

Every entity's target sequence (``encode_targets`` output: the name's token ids followed by
EOS) is one root-to-leaf path. Node 0 is the root; the node reached by an EOS edge is the
entity's *terminal* node. Children are stored CSR-style, sorted by ``(parent, token)``, so the
whole trie is five flat arrays and a decoding step for any number of beam rows is a handful of
tensor operations (no Python loop per row)::

    trie = EntityTrie.from_sequences(encode_targets(tokenizer, kg.entity_names),
                                     vocab_size=model.config.vocab_size,
                                     eos_token_id=tokenizer.eos_token_id,
                                     pad_token_id=tokenizer.pad_token_id)
    state = trie.root_states(n)                  # (n,) long
    mask = trie.allowed_mask(state)              # (n, V) bool, never an empty row
    state = trie.next_states(state, tokens)      # (n,) long

Names that are prefixes of other names stay valid: such a node has both an EOS child and
other children. After EOS (terminal nodes) and on the *dead* state (an impossible path) the
only allowed token is padding, so the allowed set is never empty.

:class:`TrieLogitsProcessor` plugs the same trie into ``model.generate`` as a
``LogitsProcessor`` (it re-walks the decoder prefix with vectorized steps).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import torch

from kgt5mm.errors import KGT5MMError

__all__ = ["EntityTrie", "TrieLogitsProcessor"]

logger = logging.getLogger(__name__)


class EntityTrie:
    """Prefix tree of entity token sequences as flat arrays (see the module docstring).

    Nodes are numbered in creation order (root 0, then depth by depth), and edge ``i`` creates
    node ``i + 1``, so the child of an edge is implicit. Attributes (numpy at rest; :meth:`to`
    gives torch views, zero-copy on CPU):

    - ``indptr`` ``(N + 2,)`` int32/int64: children of node ``n`` are edges
      ``indptr[n]:indptr[n+1]``; the extra entry gives the dead state ``N`` no children
    - ``edge_token`` ``(M,)`` int32: token of each edge (ascending within a node)
    - ``edge_key`` ``(M,)`` int64: ``parent * vocab_size + token``, ascending (for lookups)
    - ``node_entity`` ``(N + 1,)`` int32/int64: entity id of a terminal node, ``-1`` elsewhere
    - ``entity_terminal`` ``(E,)`` int64: terminal node of each entity

    State ``N`` (one past the last node) is the *dead* state of an impossible path.
    """

    def __init__(
        self,
        *,
        indptr: np.ndarray,
        edge_token: np.ndarray,
        edge_key: np.ndarray,
        node_entity: np.ndarray,
        entity_terminal: np.ndarray,
        vocab_size: int,
        eos_token_id: int,
        pad_token_id: int,
        max_length: int,
    ) -> None:
        self.indptr = indptr
        self.edge_token = edge_token
        self.edge_key = edge_key
        self.node_entity = node_entity
        self.entity_terminal = entity_terminal
        self.vocab_size = int(vocab_size)
        self.eos_token_id = int(eos_token_id)
        self.pad_token_id = int(pad_token_id)
        self.max_length = int(max_length)
        self._torch: dict[torch.device, dict[str, torch.Tensor]] = {}

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_sequences(
        cls,
        sequences: Sequence[Sequence[int]] | np.ndarray,
        *,
        vocab_size: int,
        eos_token_id: int,
        pad_token_id: int,
        names: Sequence[str] | None = None,
    ) -> EntityTrie:
        """Build the trie from one token-id sequence per entity (entity id = position).

        :param sequences: ``E`` sequences, each ending with ``eos_token_id`` exactly once
            (``encode_targets`` output), or an ``(E, L)`` int array padded with ``-1``
        :param vocab_size: size of the model's output vocabulary (logit dimension)
        :param names: entity names, only used in error messages
        :raises KGT5MMError: two entities share a token sequence, a sequence does not end
            with EOS, has EOS inside, holds padding or an id outside the vocabulary
        """
        if isinstance(sequences, np.ndarray) and sequences.ndim == 2:
            matrix = sequences
            lengths = (matrix >= 0).sum(axis=1)
        else:
            lengths = np.fromiter((len(s) for s in sequences), dtype=np.int64, count=len(sequences))
            width = int(lengths.max()) if len(lengths) else 0
            matrix = np.full((len(sequences), width), -1, dtype=np.int32)
            flat = np.fromiter((t for s in sequences for t in s), dtype=np.int32, count=int(lengths.sum()))
            rows = np.repeat(np.arange(len(sequences)), lengths)
            cols = np.arange(len(flat)) - np.repeat(np.cumsum(lengths) - lengths, lengths)
            matrix[rows, cols] = flat
            del flat, rows, cols
        num = matrix.shape[0]
        if num == 0:
            raise KGT5MMError("cannot build an entity trie from zero sequences")
        cls._validate(matrix, lengths, vocab_size, eos_token_id, pad_token_id, names)
        width = matrix.shape[1]

        order = np.lexsort(matrix.T[::-1])  # lexicographic over columns; -1 (shorter) first
        sorted_len = lengths[order]
        same_prefix = np.zeros(num, dtype=bool)  # row equals previous row on columns 0..d
        same_prefix[1:] = True
        node_of_row = np.zeros(num, dtype=np.int64)  # node at depth d-1 (the parent); root 0
        next_node = 1
        tokens_l, counts_l = [], []
        terminal = np.full(num, -1, dtype=np.int64)
        for d in range(width):
            col = matrix[order, d]
            same_prefix[1:] &= col[1:] == col[:-1]
            valid = sorted_len > d
            new = valid & ~same_prefix
            ids = np.cumsum(new) - 1 + next_node  # node id at depth d for every valid row
            parents = node_of_row[new]  # ascending; tokens ascend within a parent
            tokens_l.append(col[new].astype(np.int32))
            if len(parents):
                counts_l.append((int(parents[0]), np.bincount(parents - parents[0])))
            ends = valid & (sorted_len == d + 1)
            terminal[ends] = ids[ends]
            node_of_row = np.where(valid, ids, node_of_row)
            next_node += int(new.sum())
            del col, valid, new, ids, parents, ends
        duplicate = np.flatnonzero(same_prefix[1:] & (sorted_len[1:] == sorted_len[:-1]))
        if len(duplicate):
            a, b = int(order[duplicate[0]]), int(order[duplicate[0] + 1])

            def label(i: int) -> str:
                return repr(names[i]) if names is not None else str(i)

            raise KGT5MMError(
                f"entities {label(a)} (id {a}) and {label(b)} (id {b}) have the same target "
                f"token sequence; {len(duplicate)} such collision(s) in total: entity names must "
                "map to distinct token sequences"
            )
        del node_of_row, same_prefix
        n_nodes = next_node
        index_dtype = np.int32 if n_nodes < 2**31 - 2 else np.int64
        counts = np.zeros(n_nodes + 1, dtype=index_dtype)  # last slot: the dead state
        for first, c in counts_l:
            counts[first:first + len(c)] = c
        indptr = np.zeros(n_nodes + 2, dtype=index_dtype)
        np.cumsum(counts, out=indptr[1:])
        del counts, counts_l
        tokens = np.concatenate(tokens_l)
        del tokens_l
        edge_key = np.repeat(np.arange(n_nodes, dtype=np.int64), np.diff(indptr[:-1]))
        edge_key *= int(vocab_size)
        edge_key += tokens
        entity_terminal = np.empty(num, dtype=np.int64)
        entity_terminal[order] = terminal
        del terminal, order
        node_entity = np.full(n_nodes + 1, -1, dtype=index_dtype if num < 2**31 else np.int64)
        node_entity[entity_terminal] = np.arange(num)
        trie = cls(
            indptr=indptr, edge_token=tokens, edge_key=edge_key, node_entity=node_entity,
            entity_terminal=entity_terminal, vocab_size=vocab_size, eos_token_id=eos_token_id,
            pad_token_id=pad_token_id, max_length=width,
        )
        logger.debug("entity trie: %d entities, %d nodes, depth %d", num, n_nodes, width)
        return trie

    @staticmethod
    def _validate(matrix, lengths, vocab_size, eos, pad, names) -> None:
        def label(i):
            return (repr(names[i]) if names is not None else f"entity {i}")
        if (lengths < 2).any():
            i = int(np.flatnonzero(lengths < 2)[0])
            raise KGT5MMError(f"{label(i)}: target sequence must hold at least one token and EOS")
        last = matrix[np.arange(len(matrix)), lengths - 1]
        if (last != eos).any():
            i = int(np.flatnonzero(last != eos)[0])
            raise KGT5MMError(f"{label(i)}: target sequence does not end with EOS ({eos})")
        if ((matrix == eos).sum(axis=1) != 1).any():
            i = int(np.flatnonzero((matrix == eos).sum(axis=1) != 1)[0])
            raise KGT5MMError(f"{label(i)}: EOS must appear exactly once, at the end")
        if (matrix == pad).any():
            i = int(np.flatnonzero((matrix == pad).any(axis=1))[0])
            raise KGT5MMError(f"{label(i)}: target sequence contains the padding id {pad}")
        if (matrix >= vocab_size).any():
            i = int(np.flatnonzero((matrix >= vocab_size).any(axis=1))[0])
            raise KGT5MMError(f"{label(i)}: token id outside the vocabulary ({vocab_size})")

    # ------------------------------------------------------------------ properties
    @property
    def num_entities(self) -> int:
        """Number of entities ``E``."""
        return len(self.entity_terminal)

    @property
    def num_nodes(self) -> int:
        """Number of nodes ``N`` including the root and terminal nodes."""
        return len(self.indptr) - 2

    @property
    def dead_state(self) -> int:
        """State of an impossible path (only padding allowed)."""
        return self.num_nodes

    @property
    def edge_child(self) -> np.ndarray:
        """``(M,)`` child node of each edge (edge ``i`` created node ``i + 1``)."""
        return np.arange(1, len(self.edge_token) + 1, dtype=np.int64)

    def nbytes(self) -> int:
        """Memory held by the arrays, in bytes."""
        return sum(a.nbytes for a in (self.indptr, self.edge_token, self.edge_key,
                                      self.node_entity, self.entity_terminal))

    def parents_and_tokens(self) -> tuple[np.ndarray, np.ndarray]:
        """``(N,)`` parent and incoming token of every node (root: 0 and -1)."""
        parent = np.zeros(self.num_nodes, dtype=np.int64)
        parent[1:] = np.repeat(np.arange(self.num_nodes, dtype=np.int64),
                               np.diff(self.indptr[:-1]))
        token = np.full(self.num_nodes, -1, dtype=np.int64)
        token[1:] = self.edge_token
        return parent, token

    def sequence(self, entity: int) -> list[int]:
        """Token sequence (with EOS) of one entity, read back from the trie."""
        parent, token = self.parents_and_tokens()
        out, node = [], int(self.entity_terminal[entity])
        while node != 0:
            out.append(int(token[node]))
            node = int(parent[node])
        return out[::-1]

    # ------------------------------------------------------------------ torch stepping
    def to(self, device: torch.device | str) -> dict[str, torch.Tensor]:
        """Torch versions of the arrays on ``device`` (cached; views of the numpy arrays on CPU)."""
        device = torch.device(device)
        if device not in self._torch:
            self._torch[device] = {
                name: torch.from_numpy(getattr(self, name)).to(device)
                for name in ("indptr", "edge_token", "edge_key", "node_entity")
            }
        return self._torch[device]

    def root_states(self, n: int, device: torch.device | str = "cpu") -> torch.Tensor:
        """``(n,)`` long tensor of root states."""
        return torch.zeros(n, dtype=torch.long, device=device)

    def num_children(self, states: torch.Tensor) -> torch.Tensor:
        """``(n,)`` number of allowed next tokens (edges) of each state; 0 on terminal/dead states."""
        indptr = self.to(states.device)["indptr"]
        return (indptr[states + 1] - indptr[states]).long()

    def allowed_edges(self, states: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """All allowed ``(row, edge)`` pairs for ``states`` ``(n,)``.

        :returns: ``rows`` ``(m,)`` and ``edges`` ``(m,)`` (index into the edge arrays);
            rows without children (terminal or dead) contribute nothing here.
        """
        t = self.to(states.device)
        start = t["indptr"][states].long()
        count = t["indptr"][states + 1].long() - start
        rows = torch.repeat_interleave(torch.arange(len(states), device=states.device), count)
        offsets = torch.cumsum(count, 0) - count
        edges = torch.arange(len(rows), device=states.device) - offsets[rows] + start[rows]
        return rows, edges

    def allowed_mask(self, states: torch.Tensor) -> torch.Tensor:
        """``(n, V)`` bool mask of allowed next tokens; padding only on terminal/dead states."""
        t = self.to(states.device)
        mask = torch.zeros(len(states), self.vocab_size, dtype=torch.bool, device=states.device)
        rows, edges = self.allowed_edges(states)
        mask[rows, t["edge_token"][edges].long()] = True
        leaf = t["indptr"][states + 1] == t["indptr"][states]
        mask[leaf, self.pad_token_id] = True
        return mask

    def next_states(self, states: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """States after emitting ``tokens`` ``(n,)`` from ``states`` ``(n,)``.

        Padding keeps a terminal state; any token without an edge leads to the dead state.
        """
        t = self.to(states.device)
        keys = states * self.vocab_size + tokens
        pos = torch.searchsorted(t["edge_key"], keys).clamp_max(len(t["edge_key"]) - 1)
        found = t["edge_key"][pos] == keys
        nxt = torch.where(found, pos + 1, torch.full_like(states, self.dead_state))
        leaf = t["indptr"][states + 1] == t["indptr"][states]
        keep = leaf & (tokens == self.pad_token_id)
        return torch.where(keep, states, nxt)

    def entity_of(self, states: torch.Tensor) -> torch.Tensor:
        """Entity id of terminal states, ``-1`` elsewhere (``(n,)`` long)."""
        return self.to(states.device)["node_entity"][states].long()

    def walk(self, prefixes: torch.Tensor) -> torch.Tensor:
        """States after the token prefixes ``(n, t)`` (no decoder start token) from the root."""
        states = self.root_states(prefixes.shape[0], prefixes.device)
        for j in range(prefixes.shape[1]):
            states = self.next_states(states, prefixes[:, j])
        return states


class TrieLogitsProcessor:
    """``transformers`` logits processor that restricts ``generate`` to entity names.

    Vectorized: at each step the decoder prefixes are walked through the trie with tensor
    operations and disallowed logits are set to ``-inf``. Use it as
    ``model.generate(..., logits_processor=LogitsProcessorList([TrieLogitsProcessor(trie)]))``.
    The first decoder token (the decoder start token) is skipped.
    """

    def __init__(self, trie: EntityTrie) -> None:
        self.trie = trie

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        """Mask ``scores`` ``(rows, V)`` given ``input_ids`` ``(rows, t)``."""
        states = self.trie.walk(input_ids[:, 1:])
        mask = self.trie.allowed_mask(states)
        if scores.shape[1] > mask.shape[1]:
            pad = torch.zeros(mask.shape[0], scores.shape[1] - mask.shape[1], dtype=torch.bool,
                              device=mask.device)
            mask = torch.cat([mask, pad], dim=1)
        return scores.masked_fill(~mask, float("-inf"))

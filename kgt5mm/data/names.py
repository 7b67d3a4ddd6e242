"""Unique, readable surface names for entities (homonym disambiguation).

Generation targets must be unique strings, so entities that share a name (WordNet homonyms such
as two senses of "bass") get a distinguishing hint in parentheses. Hints are tried from the most
readable to the most specific, e.g. for WN9-IMG the first words of the WordNet definition, one
more word at a time; for MKG-W the entity type. Whatever is still ambiguous falls back to the
entity's external id, which is unique by construction. The result is one-to-one and
deterministic (it depends only on the inputs, not on dict or set order)::

    >>> disambiguate_names(["bass", "bass", "cat"], ids=["n1", "n2", "n3"],
    ...                    hints=[["fish"], ["voice"], []])
    ['bass (fish)', 'bass (voice)', 'cat']
"""

from __future__ import annotations

import logging
import re
from collections import defaultdict
from collections.abc import Sequence

from kgt5mm.errors import KGT5MMError

__all__ = ["disambiguate_names", "definition_hints", "shared_name_count", "NameIndex"]

logger = logging.getLogger(__name__)

#: Words skipped at the start of a definition when it is turned into a hint.
_LEADING_STOPWORDS = frozenset(
    "a an the any of one or some in to be being that which who an used".split()
)
#: Words not allowed to end a hint ("part of" reads worse than "part").
_TRAILING_STOPWORDS = frozenset("a an the of or and in on to for with by from as at that".split())
_WORD = re.compile(r"[^\s,;:()]+")


def definition_hints(definition: str, *, max_words: int = 6) -> list[str]:
    """Hints of growing length from a definition: its first 1, 2, ... ``max_words`` words.

    Leading filler words ("a", "the", "any of") are skipped and trailing function words are
    trimmed, so ``"the lowest part of the musical range"`` gives ``["lowest", "lowest part",
    "lowest part of the musical", "lowest part of the musical range"]``.
    """
    words = _WORD.findall(definition)
    start = 0
    while start < len(words) - 1 and words[start].lower() in _LEADING_STOPWORDS:
        start += 1
    words = words[start:]
    hints: list[str] = []
    for length in range(1, min(max_words, len(words)) + 1):
        chunk = words[:length]
        while len(chunk) > 1 and chunk[-1].lower() in _TRAILING_STOPWORDS:
            chunk = chunk[:-1]
        hint = " ".join(chunk)
        if hint and (not hints or hints[-1] != hint):
            hints.append(hint)
    return hints


def shared_name_count(names: Sequence[str]) -> int:
    """Number of distinct names that are shared by two or more entries."""
    counts: dict[str, int] = defaultdict(int)
    for name in names:
        counts[name] += 1
    return sum(1 for c in counts.values() if c > 1)


def disambiguate_names(
    names: Sequence[str],
    *,
    ids: Sequence[str],
    hints: Sequence[Sequence[str]] | None = None,
    texts: Sequence[str] | None = None,
) -> list[str]:
    """Make ``names`` unique by appending a hint in parentheses to every shared name.

    For each group of entities sharing a name, hint level ``k = 0, 1, ...`` proposes
    ``f"{name} ({hints[i][k]})"`` (the id when a member has fewer hints); a member takes the
    first proposal that no other member of the group shares at that level and that no other
    entity already uses. Members still unnamed then try, if ``texts`` (e.g. full definitions)
    are given, their first run of up to 3 words that occur in no other member's text
    (``"saddle (bicycle)"`` vs ``"saddle (horse)"``), and finally their id. Unshared names are
    kept unchanged.

    :param names: raw surface names, one per entity (non-empty)
    :param ids: external ids, unique, one per entity (the last-resort hint)
    :param hints: per-entity hints from most readable to most specific
    :returns: unique names in the same order
    :raises KGT5MMError: if ids are not unique (then no unique naming is guaranteed)
    """
    if len(ids) != len(names):
        raise KGT5MMError(f"{len(names)} names but {len(ids)} ids")
    if len(set(ids)) != len(ids):
        raise KGT5MMError("entity ids must be unique to disambiguate names")
    groups: dict[str, list[int]] = defaultdict(list)
    for index, name in enumerate(names):
        groups[name].append(index)
    result = list(names)
    taken = set(names)
    shared = [(name, members) for name, members in groups.items() if len(members) > 1]
    shared.sort(key=lambda item: item[0])
    for name, members in shared:
        taken.discard(name)
        remaining = list(members)
        depth = max((len(hints[i]) for i in members), default=0) if hints is not None else 0
        for level in range(depth):
            labels = {}
            for i in remaining:
                entity_hints = hints[i] if hints is not None else ()
                hint = entity_hints[level] if level < len(entity_hints) else ids[i]
                labels[i] = f"{name} ({hint})"
            counts: dict[str, int] = defaultdict(int)
            for label in labels.values():
                counts[label] += 1
            for i in remaining:
                if counts[labels[i]] == 1 and labels[i] not in taken:
                    result[i] = labels[i]
                    taken.add(labels[i])
            remaining = [i for i in remaining if result[i] == name]
            if not remaining:
                break
        if remaining and texts is not None:
            runs = dict(zip(members, _distinct_runs([texts[i] for i in members]), strict=True))
            labels = {i: f"{name} ({runs[i]})" for i in remaining if runs[i]}
            for i, label in labels.items():
                if list(labels.values()).count(label) == 1 and label not in taken:
                    result[i] = label
                    taken.add(label)
            remaining = [i for i in remaining if result[i] == name]
        for i in remaining:
            result[i] = f"{name} ({ids[i]})"
            taken.add(result[i])
    # Last resort: a generated label equal to another entity's plain name (impossible with the
    # check above unless ids themselves collide with names); append the id until unique.
    seen: dict[str, int] = {}
    for index, name in enumerate(result):
        while name in seen:
            name = f"{name} [{ids[index]}]"
        seen[name] = index
        result[index] = name
    if shared:
        logger.info(
            "disambiguated %d shared names (%d entities)",
            len(shared),
            sum(len(m) for _, m in shared),
        )
    return result


def _distinct_runs(texts: Sequence[str], max_words: int = 3) -> list[str]:
    """Per text, the first run of up to ``max_words`` words absent from all other texts."""
    words = [_WORD.findall(t) for t in texts]
    lowered = [{w.lower() for w in ws} for ws in words]
    runs = []
    for i, ws in enumerate(words):
        others = set().union(*(lowered[j] for j in range(len(words)) if j != i))
        run: list[str] = []
        for w in ws:
            if w.lower() not in others and w.lower() not in _TRAILING_STOPWORDS:
                run.append(w)
                if len(run) == max_words:
                    break
            elif run:
                break
        runs.append(" ".join(run))
    return runs


class NameIndex:
    """One-to-one map from unique entity name to entity index (never merges homonyms).

    :param names: unique names, index ``i`` is entity ``i``
    :raises KGT5MMError: if two entities have the same name
    """

    def __init__(self, names: Sequence[str]):
        self._index: dict[str, int] = {}
        for i, name in enumerate(names):
            previous = self._index.setdefault(name, i)
            if previous != i:
                raise KGT5MMError(
                    f"entity name {name!r} is used by entities {previous} and {i}; "
                    "names must be unique (disambiguate them first)"
                )

    def __len__(self) -> int:
        return len(self._index)

    def __contains__(self, name: object) -> bool:
        return name in self._index

    def get(self, name: str, default: int | None = None) -> int | None:
        """Index of ``name`` or ``default``."""
        return self._index.get(name, default)

    def __getitem__(self, name: str) -> int:
        try:
            return self._index[name]
        except KeyError:
            raise KeyError(
                f"no entity named {name!r} (names are exact, unique surface forms; "
                "homonyms carry a hint in parentheses)"
            ) from None

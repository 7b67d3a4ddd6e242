"""SentencePiece tokenizer fitted to a knowledge graph's text, and the target encoding.

The tokenizer is a SentencePiece model (unigram by default) trained on the entity names,
relation verbalizations, descriptions and VLM-written text of a :class:`KnowledgeGraph`, with
the context layout's marker tokens as user-defined symbols. Settings that make every entity
name survive ``encode -> decode`` unchanged:

- identity normalization (no NFKC: "ﬁ", full-width letters and the like stay as they are),
- ``remove_extra_whitespaces=False`` (double, leading and trailing spaces are kept),
- ``byte_fallback=True`` (a character outside the vocabulary becomes its UTF-8 byte pieces,
  never ``<unk>``).

Ids follow T5: ``<pad>`` = 0 (also the decoder start token), ``</s>`` = 1, ``<unk>`` = 2.

transformers 5 rebuilds ``T5Tokenizer`` from ``spiece.model`` with a fixed pipeline that drops
byte fallback and squeezes whitespace, so the saved folder holds a faithful ``tokenizer.json``
(the same unigram model, built with the ``tokenizers`` library) loaded through
``AutoTokenizer.from_pretrained(folder)`` -- which :func:`load_tokenizer` does -- plus the
original ``spiece.model`` for SentencePiece users::

    from kgt5mm.modeling import train_tokenizer, load_tokenizer, encode_targets
    tokenizer = train_tokenizer(kg, config=TokenizerConfig(vocab_size=8000), output_dir="tok/")
    tokenizer = load_tokenizer("tok/")
    labels = encode_targets(tokenizer, kg.entity_names)   # name ids + [eos], no bos
"""

from __future__ import annotations

import io
import logging
import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kgt5mm.errors import ConfigError, KGT5MMError
from kgt5mm.files import atomic_write_bytes
from kgt5mm.modeling.config import TokenizerConfig

if TYPE_CHECKING:  # pragma: no cover
    from transformers import PreTrainedTokenizerBase

    from kgt5mm.data import KnowledgeGraph

__all__ = [
    "SPIECE_FILE",
    "PAD_ID",
    "EOS_ID",
    "UNK_ID",
    "tokenizer_corpus",
    "train_tokenizer",
    "tokenizer_from_spiece",
    "load_tokenizer",
    "encode_targets",
    "token_counter",
]

logger = logging.getLogger(__name__)

#: file name of the SentencePiece model inside a tokenizer folder (as in T5 checkpoints)
SPIECE_FILE = "spiece.model"
PAD_ID, EOS_ID, UNK_ID = 0, 1, 2
_PAD, _EOS, _UNK = "<pad>", "</s>", "<unk>"
_SPACE = "\u2581"  # SentencePiece's visible space "▁"


def _marker_tokens(tokens: Sequence[str]) -> list:
    """Context markers as added tokens. They swallow the spaces around them:
    "a <sep> b" -> a, <sep>, ▁b (no lone "▁")."""
    from tokenizers import AddedToken

    return [AddedToken(t, special=False, normalized=False, lstrip=True, rstrip=True) for t in tokens]


def _default_special_tokens() -> tuple[str, ...]:
    try:
        from kgt5mm.context import SPECIAL_TOKENS
    except ImportError:  # the context package is optional for the tokenizer alone
        logger.warning("kgt5mm.context is not importable: training a tokenizer without its markers")
        return ()
    return tuple(SPECIAL_TOKENS)


def tokenizer_corpus(kg: KnowledgeGraph, *, config: TokenizerConfig) -> list[str]:
    """The sentences SentencePiece is trained on: names, relation texts, descriptions, VLM text.

    Entity names come twice so their pieces weigh more than those of long descriptions.
    Empty strings are left out. Newlines inside a text split it into several sentences.
    """
    texts: list[str] = []
    texts.extend(kg.entity_names)
    texts.extend(kg.entity_names)
    texts.extend(getattr(kg, "relation_texts", None) or [])
    if config.use_descriptions:
        texts.extend(getattr(kg, "entity_descriptions", None) or [])
    if config.use_vlm_text:
        texts.extend(getattr(kg, "entity_vlm_text", None) or [])
    sentences = []
    for text in texts:
        sentences.extend(part for part in str(text).split("\n") if part.strip())
    return sentences


def _train_spiece(
    sentences: Iterable[str], *, config: TokenizerConfig, special_tokens: Sequence[str]
) -> bytes:
    import sentencepiece as spm

    reserved = {_PAD, _EOS, _UNK}
    clash = reserved.intersection(special_tokens)
    if clash:
        raise ConfigError(f"special tokens must not redefine {sorted(clash)}")
    spm.set_random_generator_seed(config.seed)
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(list(sentences)),
        model_writer=model,
        vocab_size=config.vocab_size,
        hard_vocab_limit=False,  # small graphs have fewer distinct pieces than asked for
        model_type=config.model_type,
        character_coverage=config.character_coverage,
        normalization_rule_name="identity",
        remove_extra_whitespaces=False,
        add_dummy_prefix=True,
        byte_fallback=True,
        split_digits=True,
        allow_whitespace_only_pieces=True,
        pad_id=PAD_ID,
        eos_id=EOS_ID,
        unk_id=UNK_ID,
        bos_id=-1,
        pad_piece=_PAD,
        eos_piece=_EOS,
        unk_piece=_UNK,
        user_defined_symbols=list(special_tokens),
        input_sentence_size=config.max_sentences,
        shuffle_input_sentence=True,
        max_sentence_length=1 << 16,
        num_threads=max(1, min(os.cpu_count() or 1, 8)),
        minloglevel=2,
    )
    return model.getvalue()


def tokenizer_from_spiece(
    model_proto: bytes, *, model_max_length: int = 1 << 20
) -> PreTrainedTokenizerBase:
    """A transformers fast tokenizer equivalent to a SentencePiece unigram model.

    The pipeline mirrors SentencePiece with identity normalization: prepend "▁", map spaces
    to "▁", split before every "▁", unigram with byte fallback; decoding reverses it and
    strips the one dummy-prefix space. Sources get ``</s>`` appended (like T5).
    """
    import sentencepiece as spm
    from sentencepiece import sentencepiece_model_pb2 as sp_pb2
    from tokenizers import (
        AddedToken,
        Regex,
        Tokenizer,
        decoders,
        models,
        normalizers,
        pre_tokenizers,
        processors,
    )
    from transformers import PreTrainedTokenizerFast

    proto = sp_pb2.ModelProto()
    proto.ParseFromString(model_proto)
    if proto.trainer_spec.model_type != sp_pb2.TrainerSpec.UNIGRAM:
        raise KGT5MMError(
            "only SentencePiece unigram models convert exactly; train with model_type=unigram"
        )
    processor = spm.SentencePieceProcessor(model_proto=model_proto)
    vocab = [
        (processor.id_to_piece(i), processor.get_score(i))
        for i in range(processor.get_piece_size())
    ]
    if [vocab[i][0] for i in (PAD_ID, EOS_ID, UNK_ID)] != [_PAD, _EOS, _UNK]:
        raise KGT5MMError("the SentencePiece model must have <pad>=0, </s>=1, <unk>=2")
    backend = Tokenizer(models.Unigram(vocab, unk_id=UNK_ID, byte_fallback=True))
    backend.normalizer = normalizers.Sequence(
        [normalizers.Prepend(_SPACE), normalizers.Replace(" ", _SPACE)]
    )
    backend.pre_tokenizer = pre_tokenizers.Split(Regex(_SPACE), behavior="merged_with_next")
    backend.decoder = decoders.Sequence(
        [
            decoders.Replace(_SPACE, " "),
            decoders.ByteFallback(),
            decoders.Fuse(),
            decoders.Strip(" ", 1, 0),
        ]
    )
    backend.post_processor = processors.TemplateProcessing(
        single=f"$A {_EOS}", pair=f"$A {_EOS} $B {_EOS}", special_tokens=[(_EOS, EOS_ID)]
    )
    backend.add_special_tokens(
        [AddedToken(t, special=True, normalized=False) for t in (_PAD, _EOS, _UNK)]
    )
    user = [p.piece for p in proto.pieces if p.type == sp_pb2.ModelProto.SentencePiece.USER_DEFINED]
    if user:
        backend.add_tokens(_marker_tokens(user))
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        pad_token=_PAD,
        eos_token=_EOS,
        unk_token=_UNK,
        model_max_length=model_max_length,
        padding_side="right",
    )


def _save_folder(
    tokenizer: PreTrainedTokenizerBase, model_proto: bytes, output_dir: str | Path
) -> None:
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    tokenizer.save_pretrained(str(output_dir))
    atomic_write_bytes(output_dir / SPIECE_FILE, model_proto)


def train_tokenizer(
    kg: KnowledgeGraph,
    *,
    config: TokenizerConfig | None = None,
    output_dir: str | Path | None = None,
    special_tokens: Sequence[str] | None = None,
) -> PreTrainedTokenizerBase:
    """Train a SentencePiece tokenizer on ``kg``'s text (or load ``config.pretrained``).

    :param kg: the graph whose names, relation texts, descriptions and VLM text are used
    :param config: tokenizer settings (defaults: unigram, 8k pieces)
    :param output_dir: folder to save ``tokenizer.json``, ``tokenizer_config.json`` and
        ``spiece.model`` into (loadable with :func:`load_tokenizer`); ``None`` saves nothing
    :param special_tokens: marker tokens kept whole (default: ``kgt5mm.context.SPECIAL_TOKENS``)
    :return: a transformers tokenizer with ``pad=0, eos=1, unk=2``
    """
    config = config or TokenizerConfig()
    config.validate()
    special_tokens = _default_special_tokens() if special_tokens is None else tuple(special_tokens)
    if config.pretrained is not None:
        tokenizer = load_tokenizer(config.pretrained)
        # the context markers are one token each, as in a tokenizer trained here (the model's
        # embeddings grow to match, see kgt5mm.modeling.build_model)
        vocab = tokenizer.get_vocab()
        new = [t for t in special_tokens if t not in vocab]
        if new:
            tokenizer.add_tokens(_marker_tokens(new))
            logger.info("added %d context markers to the pretrained tokenizer", len(new))
        if output_dir is not None:
            tokenizer.save_pretrained(str(output_dir))
        return tokenizer
    sentences = tokenizer_corpus(kg, config=config)
    if not sentences:
        raise KGT5MMError(f"graph {getattr(kg, 'name', '?')!r} has no text to train a tokenizer on")
    logger.info(
        "training a %s SentencePiece model (vocab %d) on %d sentences",
        config.model_type,
        config.vocab_size,
        len(sentences),
    )
    proto = _train_spiece(sentences, config=config, special_tokens=special_tokens)
    tokenizer = tokenizer_from_spiece(proto)
    logger.info("tokenizer: %d pieces, %d special tokens", len(tokenizer), len(special_tokens))
    if output_dir is not None:
        _save_folder(tokenizer, proto, output_dir)
    return tokenizer


def load_tokenizer(path: str | Path, **kwargs: Any) -> PreTrainedTokenizerBase:
    """Load a tokenizer folder written by :func:`train_tokenizer`, or any checkpoint's tokenizer.

    A folder with a ``tokenizer.json`` loads through ``AutoTokenizer`` (faithful, byte fallback
    kept); a Hub id or a pretrained checkpoint folder loads its own tokenizer. Extra keyword
    arguments go to ``AutoTokenizer.from_pretrained``.
    """
    from transformers import AutoTokenizer

    path_obj = Path(path)
    if path_obj.exists() and not path_obj.is_dir():
        raise KGT5MMError(f"tokenizer path {str(path)!r} is a file, expected a folder or Hub id")
    if (
        path_obj.is_dir()
        and not (path_obj / "tokenizer.json").exists()
        and (path_obj / SPIECE_FILE).exists()
        and not (path_obj / "tokenizer_config.json").exists()
    ):
        tokenizer = tokenizer_from_spiece((path_obj / SPIECE_FILE).read_bytes())
    else:
        try:
            tokenizer = AutoTokenizer.from_pretrained(str(path), **kwargs)
        except (OSError, ValueError) as error:
            raise KGT5MMError(f"cannot load a tokenizer from {str(path)!r}: {error}") from error
    if tokenizer.pad_token_id is None or tokenizer.eos_token_id is None:
        raise KGT5MMError(f"tokenizer at {str(path)!r} has no pad or eos token")
    return tokenizer


def encode_targets(tokenizer: PreTrainedTokenizerBase, names: Sequence[str]) -> list[list[int]]:
    """Token ids of each generation target: the name's pieces followed by EOS, no BOS.

    Training labels and the decoding trie both use exactly this function.

    :param tokenizer: the model's tokenizer
    :param names: entity names, length ``E`` (unique)
    :return: ``E`` lists of ids, each ending with ``tokenizer.eos_token_id``
    :raises KGT5MMError: if two different names get the same ids (the tokenizer would merge
        two entities, e.g. through ``<unk>``), a name encodes to nothing, or a name contains a
        special or added token's text (``</s>`` would end the name early, ``<nbr>`` would lose
        its spaces)
    """
    names = list(names)
    if not names:
        return []
    eos = tokenizer.eos_token_id
    # <unk> may stand for characters a (pretrained) vocabulary lacks; the collision check
    # below still tells such names apart
    reserved = (set(tokenizer.all_special_ids) | set(tokenizer.get_added_vocab().values())) - {
        tokenizer.unk_token_id
    }
    encoded = tokenizer(names, add_special_tokens=False)["input_ids"]
    targets: list[list[int]] = []
    seen: dict[tuple[int, ...], int] = {}
    for index, (name, ids) in enumerate(zip(names, encoded, strict=True)):
        ids = list(ids)
        if not ids:
            raise KGT5MMError(f"entity name {name!r} (index {index}) encodes to no tokens")
        bad = [i for i in ids if i in reserved]
        if bad:
            raise KGT5MMError(
                f"entity name {name!r} (index {index}) contains the reserved token "
                f"{tokenizer.convert_ids_to_tokens(bad[0])!r}: rename the entity (special tokens "
                "and context markers cannot be part of a generated name)"
            )
        key = tuple(ids)
        previous = seen.setdefault(key, index)
        if previous != index and names[previous] != name:
            raise KGT5MMError(
                f"entity names {names[previous]!r} (index {previous}) and {name!r} (index {index}) "
                f"encode to the same token ids {ids[:20]}: the tokenizer cannot tell them apart"
            )
        targets.append(ids + [eos])
    return targets


def token_counter(tokenizer: PreTrainedTokenizerBase) -> Callable[[str], int]:
    """``text -> number of tokens`` without special tokens (the context builder's budget).

    Uses the ``tokenizers`` backend directly when there is one (several times faster than
    calling the transformers tokenizer per string).
    """
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:

        def count(text: str) -> int:
            return len(backend.encode(text, add_special_tokens=False).ids)

        return count

    def count_slow(text: str) -> int:
        return len(tokenizer(text, add_special_tokens=False)["input_ids"])

    return count_slow

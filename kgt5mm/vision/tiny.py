"""A tiny randomly initialised BLIP-2 (or InstructBLIP) with an offline processor.

For tests, demos and the CPU captioning benchmark: everything is built from configs (no
download). The text tokenizer is a byte-level BPE trained with the ``tokenizers`` library on the
prompt texts, so "Yes" and "No" are single tokens, wrapped in ``PreTrainedTokenizerFast``.
``<image>`` is in its vocabulary as a plain added special token, *not* declared as the
tokenizer's ``image_token`` attribute: the BLIP-2 / InstructBLIP processors of transformers 5.23
call ``image_token.content`` and fail on the string such an attribute holds; without it they add
``<image>`` as an ``AddedToken`` themselves (a no-op for the id) and repeat it
``num_query_tokens`` times in front of the tokenized prompt (after padding).

::

    from kgt5mm.vision.tiny import save_tiny_vlm
    save_tiny_vlm("/tmp/tiny-blip2")          # then: kgt5mm caption ... --model /tmp/tiny-blip2

``kind`` picks the architecture: "blip2" (OPT, decoder-only), "instructblip" (T5,
encoder-decoder) or "llava" (CLIP + Llama, prompts through a chat template).
``hidden`` sets the width of all three towers (32 = test size; 256+ = a "real-size"-shaped
throughput config for a GPU).
"""

from __future__ import annotations

import logging
from pathlib import Path

__all__ = ["save_tiny_vlm", "TINY_SPECIAL_TOKENS"]

logger = logging.getLogger(__name__)

#: special tokens of the tiny tokenizer, in id order
TINY_SPECIAL_TOKENS: tuple[str, ...] = ("<pad>", "<s>", "</s>", "<unk>", "<image>")


def _train_tokenizer(vocab_size: int):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    from kgt5mm.context.prompts import list_prompts, load_prompt

    corpus = []
    for pid in list_prompts():
        prompt = load_prompt(pid)
        corpus.append(prompt.template)
        corpus.extend(prompt.parts.values())
    corpus += ["Yes", "No", " Yes", " No", "yes no"] * 50
    corpus += ["a photo of a cat, a horse, a camera, a cup, a motorcycle, a rocket, a tower."] * 5
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=list(TINY_SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False,
    )
    tok.train_from_iterator(corpus, trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="<pad>", bos_token="<s>", eos_token="</s>",
        unk_token="<unk>",
    )


def save_tiny_vlm(folder: str | Path, *, kind: str = "blip2", hidden: int = 32, layers: int = 1,
                  num_query_tokens: int = 4, image_size: int = 32, vocab_size: int = 400,
                  seed: int = 0) -> Path:
    """Build a random BLIP-2 / InstructBLIP with its processor and save both to ``folder``.

    :param kind: "blip2" (OPT decoder-only language model), "instructblip" (T5
        encoder-decoder) or "llava" (CLIP vision tower + Llama, prompts through a chat template)
    :param hidden: width of the vision tower, Q-Former and language model
    :param layers: layers per tower
    :param num_query_tokens: Q-Former query tokens (= image tokens in the prompt)
    :param image_size: input resolution of the vision tower (square)
    :param vocab_size: BPE vocabulary size of the text tokenizer
    :returns: the folder, loadable with ``AutoProcessor`` + ``AutoModelForImageTextToText``
    """
    import torch
    from transformers import (
        Blip2Config,
        Blip2ForConditionalGeneration,
        Blip2Processor,
        InstructBlipConfig,
        InstructBlipForConditionalGeneration,
        InstructBlipProcessor,
        OPTConfig,
        T5Config,
    )

    try:
        from transformers import BlipImageProcessorPil as ImageProcessor
    except ImportError:  # pragma: no cover - older transformers
        from transformers import BlipImageProcessor as ImageProcessor

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tokenizer = _train_tokenizer(vocab_size)
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in TINY_SPECIAL_TOKENS}
    heads = 2 if hidden < 128 else max(2, hidden // 64)
    vision = dict(hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=layers,
                  num_attention_heads=heads, image_size=image_size, patch_size=max(4, image_size // 4))
    qformer = dict(hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=layers,
                   num_attention_heads=heads, encoder_hidden_size=hidden, vocab_size=len(tokenizer),
                   max_position_embeddings=512)
    torch.manual_seed(seed)
    image_processor = ImageProcessor(size={"height": image_size, "width": image_size})
    if kind == "blip2":
        text = OPTConfig(vocab_size=len(tokenizer), hidden_size=hidden, word_embed_proj_dim=hidden,
                         num_hidden_layers=layers, ffn_dim=2 * hidden, num_attention_heads=heads,
                         max_position_embeddings=512, pad_token_id=ids["<pad>"],
                         bos_token_id=ids["<s>"], eos_token_id=ids["</s>"])
        config = Blip2Config(vision_config=vision, qformer_config=qformer, text_config=text.to_dict(),
                             num_query_tokens=num_query_tokens, image_token_index=ids["<image>"])
        model = Blip2ForConditionalGeneration(config)
        processor = Blip2Processor(image_processor, tokenizer, num_query_tokens=num_query_tokens)
    elif kind == "instructblip":
        text = T5Config(vocab_size=len(tokenizer), d_model=hidden, d_kv=max(8, hidden // heads),
                        d_ff=2 * hidden, num_layers=layers, num_decoder_layers=layers,
                        num_heads=heads, pad_token_id=ids["<pad>"], eos_token_id=ids["</s>"],
                        decoder_start_token_id=ids["<pad>"])
        config = InstructBlipConfig(vision_config=vision, qformer_config=qformer,
                                    text_config=text.to_dict(), num_query_tokens=num_query_tokens,
                                    image_token_index=ids["<image>"])
        model = InstructBlipForConditionalGeneration(config)
        processor = InstructBlipProcessor(image_processor=image_processor, tokenizer=tokenizer,
                                          qformer_tokenizer=tokenizer, num_query_tokens=num_query_tokens)
    elif kind == "llava":
        from transformers import (
            LlamaConfig,
            LlavaConfig,
            LlavaForConditionalGeneration,
            LlavaProcessor,
        )

        try:
            from transformers import CLIPImageProcessorPil as ClipProcessor
        except ImportError:  # pragma: no cover - older transformers
            from transformers import CLIPImageProcessor as ClipProcessor
        patch = max(4, image_size // 4)
        text = LlamaConfig(vocab_size=len(tokenizer), hidden_size=hidden, intermediate_size=2 * hidden,
                           num_hidden_layers=layers, num_attention_heads=heads,
                           num_key_value_heads=heads, max_position_embeddings=512,
                           pad_token_id=ids["<pad>"], bos_token_id=ids["<s>"], eos_token_id=ids["</s>"])
        clip = dict(hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=max(2, layers),
                    num_attention_heads=heads, image_size=image_size, patch_size=patch,
                    projection_dim=hidden)
        config = LlavaConfig(vision_config={"model_type": "clip_vision_model", **clip},
                             text_config=text.to_dict(), image_token_index=ids["<image>"],
                             image_seq_length=(image_size // patch) ** 2, vision_feature_layer=-1)
        model = LlavaForConditionalGeneration(config)
        image_processor = ClipProcessor(size={"shortest_edge": image_size},
                                        crop_size={"height": image_size, "width": image_size})
        chat_template = (
            "{% for message in messages %}{{ message['role'] | upper }}: "
            "{% for item in message['content'] %}{% if item['type'] == 'image' %}<image>\n"
            "{% else %}{{ item['text'] }}{% endif %}{% endfor %}\n{% endfor %}"
            "{% if add_generation_prompt %}ASSISTANT:{% endif %}"
        )
        processor = LlavaProcessor(image_processor=image_processor, tokenizer=tokenizer,
                                   patch_size=patch, vision_feature_select_strategy="full",
                                   num_additional_image_tokens=1, chat_template=chat_template)
        config.vision_feature_select_strategy = "full"
        model.config.vision_feature_select_strategy = "full"
    else:
        raise ValueError(f"kind must be 'blip2', 'instructblip' or 'llava', got {kind!r}")
    model.generation_config.pad_token_id = ids["<pad>"]
    model.generation_config.eos_token_id = ids["</s>"]
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    logger.info("saved a tiny random %s (%d parameters) to %s", kind,
                sum(p.numel() for p in model.parameters()), folder)
    return folder

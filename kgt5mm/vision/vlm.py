"""A thin wrapper around any image-text-to-text model that transformers can load.

BLIP-2, InstructBLIP, LLaVA-style and other models load through ``AutoProcessor`` +
``AutoModelForImageTextToText`` (``AutoModelForVision2Seq`` where an older transformers has it),
by Hub id or local path. Two operations, both batched:

* :meth:`VLM.yes_probability`: one generation step with scores; the probability mass of the
  "Yes" tokens against the "No" tokens at the first generated position, normalised to
  ``P(Yes) / (P(Yes) + P(No))``. Works for decoder-only and encoder-decoder language models.
* :meth:`VLM.generate`: greedy generation of a short answer; only the new tokens are decoded.

Models whose processor has a chat template get the prompt wrapped as one user turn with one
image; others (BLIP-2, InstructBLIP) get the prompt text as is.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from kgt5mm.errors import ConfigError, KGT5MMError

if TYPE_CHECKING:
    import torch
    from PIL import Image

__all__ = ["VLM", "answer_token_ids"]

logger = logging.getLogger(__name__)

_YES_FORMS = ("Yes", "yes", " Yes", " yes", "YES", " YES")
_NO_FORMS = ("No", "no", " No", " no", "NO", " NO")


def answer_token_ids(tokenizer: Any) -> tuple[list[int], list[int]]:
    """Token ids that can start a "Yes" and a "No" answer (first token of each spelling).

    A first token is accepted when its decoded text, stripped and lower-cased, is a non-empty
    prefix of "yes" / "no"; ids that could start both are removed from both.

    :raises ConfigError: when the tokenizer has no usable first token for either answer
    """

    def first_ids(forms: Sequence[str], word: str) -> set[int]:
        ids: set[int] = set()
        for form in forms:
            encoded = tokenizer.encode(form, add_special_tokens=False)
            if not encoded:
                continue
            text = tokenizer.decode([encoded[0]]).strip().lower()
            if text and word.startswith(text):
                ids.add(int(encoded[0]))
        return ids

    yes, no = first_ids(_YES_FORMS, "yes"), first_ids(_NO_FORMS, "no")
    both = yes & no
    yes, no = sorted(yes - both), sorted(no - both)
    if not yes or not no:
        raise ConfigError(f"the VLM's tokenizer has no distinct first token for Yes {yes} / No {no}")
    return yes, no


def _resolve_dtype(name: str, device: torch.device) -> torch.dtype:
    import torch

    if name == "auto":
        if device.type == "cuda" and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return torch.float32
    table = {"bf16": torch.bfloat16, "bfloat16": torch.bfloat16, "fp16": torch.float16,
             "float16": torch.float16, "fp32": torch.float32, "float32": torch.float32}
    if name not in table:
        raise ConfigError(f"dtype must be auto, bf16, fp16 or fp32, got {name!r}")
    return table[name]


class VLM:
    """An image-text-to-text model with its processor, ready for batched inference.

    :param model: Hub id or local folder
    :param device: torch device (default: CUDA if available, else CPU)
    :param dtype: "auto" (bf16 on a GPU that supports it, else fp32), "bf16", "fp16", "fp32"
    """

    def __init__(self, model: str, *, device: str | torch.device | None = None, dtype: str = "auto"):
        import torch
        import transformers
        from transformers import AutoProcessor

        self.model_id = str(model)
        self.device = torch.device(device) if device is not None else torch.device(
            "cuda" if torch.cuda.is_available() else "cpu")
        self.dtype = _resolve_dtype(dtype, self.device)
        try:
            self.processor = AutoProcessor.from_pretrained(self.model_id)
        except (OSError, ValueError) as error:
            raise KGT5MMError(f"cannot load a processor from {self.model_id!r}: {error}") from error
        loaders = [getattr(transformers, name) for name in
                   ("AutoModelForImageTextToText", "AutoModelForVision2Seq") if hasattr(transformers, name)]
        last_error: Exception | None = None
        self.model = None
        for loader in loaders:
            try:
                self.model = loader.from_pretrained(self.model_id, dtype=self.dtype)
                break
            except (OSError, ValueError, KeyError) as error:
                last_error = error
        if self.model is None:
            raise KGT5MMError(f"cannot load an image-text-to-text model from {self.model_id!r}: {last_error}")
        self.model.to(self.device).eval()
        text_config = getattr(self.model.config, "text_config", None) or self.model.config
        self.decoder_only = not bool(getattr(text_config, "is_encoder_decoder", False))
        self.tokenizer = getattr(self.processor, "tokenizer", self.processor)
        if self.decoder_only:
            self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token_id is None and self.tokenizer.eos_token_id is not None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.yes_ids, self.no_ids = answer_token_ids(self.tokenizer)
        self.use_chat_template = bool(getattr(self.processor, "chat_template", None))
        logger.info("VLM %s on %s (%s), decoder-only=%s, chat template=%s, yes ids %s, no ids %s",
                    self.model_id, self.device, self.dtype, self.decoder_only,
                    self.use_chat_template, self.yes_ids, self.no_ids)

    def _inputs(self, images: Sequence[Image.Image], prompts: Sequence[str]) -> dict[str, Any]:
        if len(images) != len(prompts):
            raise ValueError(f"{len(images)} images for {len(prompts)} prompts")
        texts = list(prompts)
        if self.use_chat_template:
            texts = [
                self.processor.apply_chat_template(
                    [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": p}]}],
                    add_generation_prompt=True, tokenize=False)
                for p in prompts
            ]
        batch = self.processor(images=list(images), text=texts, return_tensors="pt", padding=True)
        batch = batch.to(self.device)
        if "pixel_values" in batch and batch["pixel_values"].is_floating_point():
            batch["pixel_values"] = batch["pixel_values"].to(self.dtype)
        return dict(batch)

    def yes_probability(self, images: Sequence[Image.Image], prompts: Sequence[str]) -> list[float]:
        """Normalised P(Yes) at the first generated position, one per (image, prompt)."""
        import torch

        inputs = self._inputs(images, prompts)
        with torch.inference_mode():
            out = self.model.generate(
                **inputs, max_new_tokens=1, do_sample=False, num_beams=1,
                output_scores=True, output_logits=True, return_dict_in_generate=True,
            )
        logits = out.logits[0] if getattr(out, "logits", None) else out.scores[0]
        probs = torch.softmax(logits.float(), dim=-1)
        p_yes = probs[:, self.yes_ids].sum(-1)
        p_no = probs[:, self.no_ids].sum(-1)
        total = (p_yes + p_no).clamp_min(1e-30)
        return (p_yes / total).tolist()

    def generate(self, images: Sequence[Image.Image], prompts: Sequence[str], *,
                 max_new_tokens: int = 48) -> list[str]:
        """Greedy answers (new tokens only, special tokens skipped, stripped)."""
        import torch

        inputs = self._inputs(images, prompts)
        with torch.inference_mode():
            sequences = self.model.generate(
                **inputs, max_new_tokens=max_new_tokens, min_new_tokens=1, do_sample=False,
                num_beams=1,
            )
        if hasattr(sequences, "sequences"):
            sequences = sequences.sequences
        input_ids = inputs.get("input_ids")
        if self.decoder_only and input_ids is not None and sequences.shape[1] > input_ids.shape[1]:
            prompt_len = input_ids.shape[1]
            if torch.equal(sequences[:, :prompt_len].to(input_ids.device), input_ids):
                sequences = sequences[:, prompt_len:]
        texts = self.tokenizer.batch_decode(sequences, skip_special_tokens=True)
        return [" ".join(t.split()) for t in texts]

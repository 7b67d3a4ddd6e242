"""Model builder: named shapes, pretrained checkpoints from a local folder, LoRA through PEFT."""

from __future__ import annotations

import pytest
import torch

from kgt5mm.data import load_graph
from kgt5mm.errors import KGT5MMError
from kgt5mm.modeling import (
    MODEL_SIZES,
    LoraConfig,
    ModelConfig,
    TokenizerConfig,
    build_model,
    count_parameters,
    encode_targets,
    save_model,
    train_tokenizer,
)


@pytest.fixture(scope="module")
def kg():
    return load_graph("wn9_img_tiny")


@pytest.fixture(scope="module")
def tokenizer(kg):
    return train_tokenizer(kg, config=TokenizerConfig(vocab_size=600))


@pytest.fixture(scope="module")
def pretrained_dir(tmp_path_factory, tokenizer):
    folder = tmp_path_factory.mktemp("tiny_t5")
    torch.manual_seed(0)
    build_model(ModelConfig(size="tiny", d_model=32, d_ff=64, num_heads=2, d_kv=16), tokenizer=tokenizer) \
        .save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def test_named_shapes(tokenizer):
    model = build_model(ModelConfig(size="tiny"), tokenizer=tokenizer)
    assert model.config.vocab_size == len(tokenizer)
    assert model.config.d_model == MODEL_SIZES["tiny"]["d_model"]
    assert model.config.decoder_start_token_id == tokenizer.pad_token_id == 0
    small = ModelConfig(size="small").shape()
    assert (small["d_model"], small["num_layers"], small["num_heads"]) == (512, 6, 8)


def _one_step(model, tokenizer, kg, lr=1e-2):
    sources = ["<query> " + n for n in kg.entity_names[:8]]
    batch = tokenizer(sources, padding=True, return_tensors="pt")
    labels = torch.full((8, 12), -100)
    for i, ids in enumerate(encode_targets(tokenizer, kg.entity_names[8:16])):
        labels[i, :len(ids[:12])] = torch.tensor(ids[:12])
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr)
    loss = model(**batch, labels=labels).loss
    loss.backward()
    optimizer.step()
    return loss.item()


def test_pretrained_local_folder_loads_offline(pretrained_dir, tokenizer):
    model = build_model(ModelConfig(pretrained=str(pretrained_dir)), tokenizer=tokenizer)
    assert model.config.d_model == 32
    with pytest.raises(KGT5MMError, match="cannot load a seq2seq checkpoint"):
        build_model(ModelConfig(pretrained=str(pretrained_dir / "missing")), tokenizer=tokenizer)


def test_lora_trains_adapters_only_and_saves_both_ways(pretrained_dir, tokenizer, kg, tmp_path):
    config = ModelConfig(pretrained=str(pretrained_dir), lora=LoraConfig(enabled=True, r=4, target_modules=["q", "v"]))
    model = build_model(config, tokenizer=tokenizer)
    trainable, total = count_parameters(model)
    assert 0 < trainable < total / 4
    frozen = {n: p.detach().clone() for n, p in model.named_parameters() if not p.requires_grad}
    lora_b = {n: p.detach().clone() for n, p in model.named_parameters() if "lora_B" in n}
    _one_step(model, tokenizer, kg)
    assert all(torch.equal(p, frozen[n]) for n, p in model.named_parameters() if n in frozen)
    assert any(not torch.equal(p, lora_b[n]) for n, p in model.named_parameters() if n in lora_b)

    save_model(model, tmp_path / "adapter", merge_lora=False)
    assert (tmp_path / "adapter" / "adapter_config.json").exists()
    save_model(model, tmp_path / "merged", merge_lora=True)
    assert (tmp_path / "merged" / "config.json").exists()
    assert not (tmp_path / "merged" / "adapter_config.json").exists()

    from peft import PeftModel
    from transformers import AutoModelForSeq2SeqLM

    batch = tokenizer(["<query> a test"], return_tensors="pt")
    model.eval()
    with torch.no_grad():
        reference = model(**batch, decoder_input_ids=torch.zeros((1, 1), dtype=torch.long)).logits
        merged = AutoModelForSeq2SeqLM.from_pretrained(tmp_path / "merged").eval()
        adapted = PeftModel.from_pretrained(AutoModelForSeq2SeqLM.from_pretrained(pretrained_dir),
                                            tmp_path / "adapter").eval()
        for other in (merged, adapted):
            logits = other(**batch, decoder_input_ids=torch.zeros((1, 1), dtype=torch.long)).logits
            torch.testing.assert_close(logits, reference, atol=1e-4, rtol=1e-4)


def test_lora_rejects_unknown_target_modules(pretrained_dir, tokenizer):
    config = ModelConfig(pretrained=str(pretrained_dir), lora=LoraConfig(enabled=True, target_modules=["query"]))
    with pytest.raises(KGT5MMError, match="target_modules"):
        build_model(config, tokenizer=tokenizer)


def test_constrained_search_on_a_lora_model_matches_its_merged_copy(pretrained_dir, tokenizer, kg):
    """PEFT-wrapped T5 goes through the grouped cross-attention path and equals the merged model."""
    from kgt5mm.decoding import EntityTrie, constrained_beam_search
    from kgt5mm.decoding.beam import _GroupedCrossAttention
    from kgt5mm.modeling.model import unwrap_peft

    config = ModelConfig(pretrained=str(pretrained_dir),
                         lora=LoraConfig(enabled=True, r=4, target_modules=["q", "v", "o"]))
    torch.manual_seed(0)
    model = build_model(config, tokenizer=tokenizer).eval()
    with torch.no_grad():  # non-zero adapters, so LoRA changes the outputs
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.5)
    assert _GroupedCrossAttention.supports(model)
    targets = encode_targets(tokenizer, kg.entity_names)
    trie = EntityTrie.from_sequences(targets, vocab_size=model.config.vocab_size,
                                     eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    batch = tokenizer(["<query> a test", "<query> another longer test source"], padding=True,
                      return_tensors="pt")
    lora = constrained_beam_search(model, trie, input_ids=batch["input_ids"],
                                   attention_mask=batch["attention_mask"], num_beams=4, top_k=6)
    merged = unwrap_peft(model, merge=True).eval()
    plain = constrained_beam_search(merged, trie, input_ids=batch["input_ids"],
                                    attention_mask=batch["attention_mask"], num_beams=4, top_k=6)
    assert lora.entities.tolist() == plain.entities.tolist()
    torch.testing.assert_close(lora.scores, plain.scores, atol=1e-4, rtol=0)

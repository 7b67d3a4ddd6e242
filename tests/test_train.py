"""The training loop on a tiny T5 and the tiny real graph: learning, exact resume, batches."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from kgt5mm.config import Config
from kgt5mm.training import (
    Trainer,
    collate,
    num_planned_batches,
    padding_share,
    plan_batches,
    shard_batches,
)

TINY_YAML = Path(__file__).resolve().parents[1] / "run_scripts" / "wn9_img_tiny.yaml"


def tiny_config(output_dir: Path, *overrides: str) -> Config:
    """The shipped tiny config, shrunk further for tests (no test split, no model folder)."""
    return Config.from_yaml(TINY_YAML, [
        f"train.output_dir={output_dir}", "tokenizer.vocab_size=600", "model.d_model=32",
        "model.d_ff=64", "model.num_heads=2", "model.d_kv=16", "train.eval_queries=8",
        "train.eval_every_steps=null", "train.test_at_end=false", "train.save_model=false",
        "train.log_every_steps=1", "train.log_samples=0", "train.num_threads=1", "eval.num_beams=2", "eval.top_k=2",
        *overrides])


def _losses(run_dir: Path) -> dict[int, float]:
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return {r["step"]: r["loss"] for r in records if r["kind"] == "train"}


def test_a_few_steps_lower_the_loss(tmp_path):
    config = tiny_config(tmp_path, "train.max_steps=16", "train.lr=5e-3", "train.warmup_steps=2")
    result = Trainer(config).fit()
    losses = _losses(result.run_dir)
    assert result.global_step == 16 and sorted(losses) == list(range(1, 17))
    first, last = np.mean([losses[s] for s in (1, 2, 3)]), np.mean([losses[s] for s in (14, 15, 16)])
    assert last < first - 1.0, losses
    assert (result.run_dir / "curves.png").stat().st_size > 0
    assert (result.run_dir / "metrics.csv").read_text().startswith("step,kind,loss")
    assert result.valid_metrics["num_queries"] == 8 and 0 <= result.padding_share < 0.3


def test_test_at_end_writes_metrics_and_the_per_relation_breakdown(tmp_path):
    config = tiny_config(tmp_path, "train.max_steps=3", "train.test_at_end=true", "eval.max_queries=10")
    result = Trainer(config).fit()
    assert result.test_metrics["num_queries"] == 10
    saved = json.loads((result.run_dir / "metrics.json").read_text())
    assert saved["split"] == "test" and saved["metrics"] == pytest.approx(result.test_metrics)
    assert saved["train_seconds"] == pytest.approx(result.train_seconds, abs=0.1) and saved["train_seconds"] > 0
    assert saved["num_processes"] == 1 and saved["best_step"] == result.best_step
    assert saved["num_parameters"] == sum(p.numel() for p in Trainer(config).model.parameters())
    # benchmarks/record_run.py turns the run folder into a results record
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "record_run", Path(__file__).resolve().parents[1] / "benchmarks" / "record_run.py")
    record_run = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(record_run)
    figures, recorded_config = record_run.run_figures(result.run_dir, wall_minutes=1.0)
    assert figures["test.both.mrr"] == pytest.approx(result.test_metrics["both.realistic.mrr"], abs=1e-5)
    assert figures["test.num_queries"] == 10 and figures["steps"] == 3 and figures["wall_minutes"] == 1.0
    assert figures["train_minutes"] == round(saved["train_seconds"] / 60, 1)
    assert recorded_config["name"] == config.name
    rows = [line.split("\t") for line in (result.run_dir / "per_relation.tsv").read_text().splitlines()]
    assert rows[0][:4] == ["relation", "name", "side", "num_queries"]
    assert sum(int(row[3]) for row in rows[1:] if row[2] == "both") == 10
    assert (result.run_dir / "per_relation_mrr.png").read_bytes()[:4] == b"\x89PNG"


def test_resume_after_a_stop_equals_an_uninterrupted_run(tmp_path):
    # dropout on, an epoch boundary (11 batches per epoch) after the stop: data order, RNG,
    # optimizer and schedule all have to be restored for the parameters to match exactly.
    common = ("train.max_steps=14", "model.dropout_rate=0.1", "train.save_every_steps=5",
              "train.lr=3e-3")
    straight = Trainer(tiny_config(tmp_path / "a", *common))
    straight.fit()
    Trainer(tiny_config(tmp_path / "b", *common)).fit(stop_after_steps=5)
    # what a job killed while saving and logging leaves behind: a partial state folder (never
    # picked by --resume) and a torn last line of metrics.jsonl (ignored and cut off)
    run_b = tiny_config(tmp_path / "b", *common).run_dir
    (run_b / "states" / ".partial-step_14").mkdir()
    with open(run_b / "metrics.jsonl", "a") as log:
        log.write('{"step": 6, "kind": "tra')
    resumed = Trainer(tiny_config(tmp_path / "b", *common))
    result = resumed.fit(resume="auto")
    assert result.global_step == 14 and resumed.state.epoch == 1
    expected = straight.accelerator.unwrap_model(straight.model).state_dict()
    for name, value in resumed.accelerator.unwrap_model(resumed.model).state_dict().items():
        assert torch.equal(value, expected[name]), name
    assert _losses(straight.run_dir) == _losses(result.run_dir)
    # starting afresh in a folder that holds saved states would mix two runs: refused
    from kgt5mm.errors import KGT5MMError

    config_file = result.run_dir / "config.yaml"
    before = config_file.read_text()
    with pytest.raises(KGT5MMError, match="pass --resume"):
        Trainer(tiny_config(tmp_path / "b", *common, "train.lr=1e-2")).fit()
    assert config_file.read_text() == before  # the refused start left the run's config alone
    assert sorted(p.name for p in (result.run_dir / "states").iterdir()) == ["step_10", "step_14"]


def test_a_save_killed_midway_leaves_no_state_that_resume_would_pick(tmp_path):
    from types import SimpleNamespace

    from kgt5mm.training import latest_state

    class KilledWhileSaving:
        is_main_process = True

        def wait_for_everyone(self):
            pass

        def save_state(self, folder):
            Path(folder).mkdir(parents=True)
            (Path(folder) / "model.safetensors").write_bytes(b"half")
            raise KeyboardInterrupt  # the job is killed mid-write

    trainer = Trainer.__new__(Trainer)  # only what save_state reads
    trainer.accelerator, trainer.run_dir = KilledWhileSaving(), tmp_path
    trainer.state, trainer.config = SimpleNamespace(global_step=7), tiny_config(tmp_path)
    with pytest.raises(KeyboardInterrupt):
        trainer.save_state()
    assert latest_state(tmp_path) is None


def test_batch_plan_is_seeded_complete_and_sharded():
    rng = np.random.default_rng(0)
    lengths = rng.integers(5, 200, size=1000)
    plan = plan_batches(lengths, batch_size=16, seed=3, epoch=2, group_size=8)
    assert len(plan) == num_planned_batches(1000, batch_size=16, group_size=8)
    assert sorted(np.concatenate(plan).tolist()) == list(range(1000))
    again = plan_batches(lengths, batch_size=16, seed=3, epoch=2, group_size=8)
    assert all(np.array_equal(a, b) for a, b in zip(plan, again, strict=True))
    other = plan_batches(lengths, batch_size=16, seed=3, epoch=3, group_size=8)
    assert not all(np.array_equal(a, b) for a, b in zip(plan, other, strict=False))
    shuffled = plan_batches(lengths, batch_size=16, seed=3, epoch=2, length_grouping=False)
    label_len = np.full(1000, 4)
    assert padding_share(lengths, label_len, plan) < 0.1 < padding_share(lengths, label_len, shuffled)
    shards = [shard_batches(plan, process_index=r, num_processes=3, multiple_of=2) for r in range(3)]
    assert len({len(s) for s in shards}) == 1 and len(shards[0]) % 2 == 0
    seen = np.concatenate([b for s in shards for b in s])
    assert set(seen.tolist()) == set(range(1000))


def test_collate_pads_dynamically():
    batch = collate([[5, 6, 1], [7, 1]], [[3, 1], [4, 4, 4, 1]], np.array([0, 1]), pad_id=0)
    assert batch["input_ids"].tolist() == [[5, 6, 1], [7, 1, 0]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [1, 1, 0]]
    assert batch["labels"].tolist() == [[3, 1, -100, -100], [4, 4, 4, 1]]


@pytest.mark.parametrize("value", ["train.max_steps=0", "train.gradient_accumulation_steps=0"])
def test_bad_train_values_fail_before_anything_runs(tmp_path, value):
    from kgt5mm.errors import ConfigError

    with pytest.raises(ConfigError):
        tiny_config(tmp_path, value)
    assert not any(tmp_path.iterdir())


def test_example_weighted_loss_matches_the_model_loss_and_drops_zero_weights():
    from transformers import T5Config, T5ForConditionalGeneration

    from kgt5mm.training import IGNORE_INDEX, example_weighted_loss

    torch.manual_seed(0)
    model = T5ForConditionalGeneration(T5Config(vocab_size=40, d_model=16, d_ff=32, num_layers=1,
                                                num_heads=2, d_kv=8, decoder_start_token_id=0)).eval()
    source = torch.randint(2, 40, (3, 5))
    labels = torch.tensor([[5, 6, 1, IGNORE_INDEX], [7, 1, IGNORE_INDEX, IGNORE_INDEX], [8, 9, 10, 1]])
    out = model(input_ids=source, labels=labels)
    ones = example_weighted_loss(out.logits, labels, torch.ones(3))
    torch.testing.assert_close(ones, out.loss)
    # weight 0 on the middle example = the mean token loss of the other two, computed alone
    keep = torch.tensor([0, 2])
    alone = model(input_ids=source[keep], labels=labels[keep]).loss
    torch.testing.assert_close(example_weighted_loss(out.logits, labels, torch.tensor([1.0, 0.0, 1.0])), alone)
    # weights in (0, 1): a weighted mean over tokens, between the two extremes' token sums
    logp = torch.log_softmax(out.logits, -1)
    tok = -logp.gather(2, labels.clamp_min(0).unsqueeze(2)).squeeze(2) * (labels != IGNORE_INDEX)
    w = torch.tensor([1.0, 0.25, 0.5])
    expected = (tok.sum(1) * w).sum() / ((labels != IGNORE_INDEX).sum(1) * w).sum()
    torch.testing.assert_close(example_weighted_loss(out.logits, labels, w), expected)


def test_out_of_context_weight_flags_answers_outside_the_source(tmp_path):
    from kgt5mm.training import IGNORE_INDEX

    trainer = Trainer(tiny_config(tmp_path, "train.max_steps=2", "train.out_of_context_weight=0.25"))
    data = trainer._epoch(0)
    # independent check: rebuild each training source and look for the answer's neighbour edge
    expected = [int(a) in trainer.builder.select(int(e), int(q), exclude_edge=int(x), epoch=0).neighbours
                for (e, q, a), x in zip(trainer.queries, trainer.edges, strict=True)]
    assert data.answer_in_context.tolist() == expected
    assert 0 < np.mean(expected) < 1  # both kinds occur on the tiny graph
    trainer._epoch_data = data
    batch = data.batches[0]
    tensors = trainer._tensors(batch)
    assert tensors["example_weights"].tolist() == [1.0 if expected[i] else 0.25 for i in batch]
    loss = trainer._loss(dict(tensors))
    assert torch.isfinite(loss) and (tensors["labels"] != IGNORE_INDEX).any()
    # independent: the model's own forward with labels, token losses weighted by hand
    with torch.no_grad():
        logits = trainer.model(**{k: v for k, v in tensors.items() if k != "example_weights"}).logits
    labels, w = tensors["labels"], tensors["example_weights"]
    tok = torch.nn.functional.cross_entropy(logits.transpose(1, 2), labels, ignore_index=IGNORE_INDEX,
                                            reduction="none")
    mask = (labels != IGNORE_INDEX).float()
    torch.testing.assert_close(loss.detach(), (tok * w[:, None]).sum() / (mask * w[:, None]).sum())
    assert trainer.fit().global_step == 2
    # the default weight 1 adds no weights (the model's own loss)
    plain = Trainer(tiny_config(tmp_path / "plain", "train.max_steps=1"))
    plain._epoch_data = plain._epoch(0)
    assert "example_weights" not in plain._tensors(plain._epoch_data.batches[0])


def test_out_of_context_weight_outside_0_1_is_a_config_error(tmp_path):
    from kgt5mm.errors import ConfigError

    with pytest.raises(ConfigError, match="out_of_context_weight"):
        tiny_config(tmp_path, "train.out_of_context_weight=1.5")


def test_validation_curves_of_several_runs_line_up_by_epoch(tmp_path):
    from kgt5mm.errors import KGT5MMError
    from kgt5mm.training import plot_validation_runs, read_records, validation_curve

    # run a: 10 steps per epoch; run b: 20 steps per epoch
    a = [{"step": 5, "kind": "train", "epoch": 0.5, "loss": 2.0},
         {"step": 10, "kind": "valid", "mrr": 0.1},
         {"step": 20, "kind": "train", "epoch": 2.0, "loss": 1.0},
         {"step": 20, "kind": "valid", "mrr": 0.3},
         {"step": 20, "kind": "test", "mrr": 0.25}]
    b = [{"step": 40, "kind": "valid", "mrr": 0.2},
         {"step": 20, "kind": "valid", "mrr": float("nan")},
         {"step": 40, "kind": "train", "epoch": 2.0, "loss": 1.5}]
    assert validation_curve(a, metric="mrr") == [(10.0, 0.1), (20.0, 0.3)]
    assert validation_curve(a, metric="mrr", x="epoch") == [(1.0, 0.1), (2.0, 0.3)]
    assert validation_curve(b, metric="mrr", x="epoch") == [(2.0, 0.2)]  # NaN dropped
    with pytest.raises(KGT5MMError, match="train records"):
        validation_curve([{"step": 1, "kind": "valid", "mrr": 0.1}], metric="mrr", x="epoch")
    with pytest.raises(KGT5MMError, match="'step' or 'epoch'"):
        validation_curve(a, metric="mrr", x="minutes")
    path = plot_validation_runs({"a": a, "b": b}, tmp_path / "runs.png", metric="mrr", x="epoch")
    assert path.read_bytes().startswith(b"\x89PNG")
    with pytest.raises(KGT5MMError, match="no validation records of 'hits'"):
        plot_validation_runs({"a": a}, tmp_path / "none.png", metric="hits")
    assert not (tmp_path / "none.png").exists()
    broken = tmp_path / "metrics.jsonl"
    broken.write_text('{"step": 1, "kind": "valid", "mrr": 0.1}\n\n{"step": 2,\n')
    with pytest.raises(KGT5MMError, match=r"metrics.jsonl:3: not JSON"):
        read_records(broken)
    broken.write_text('{"step": 1, "kind": "valid", "mrr": 0.1}\n\n')
    assert read_records(broken) == [{"step": 1, "kind": "valid", "mrr": 0.1}]

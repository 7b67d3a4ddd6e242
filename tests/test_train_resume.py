"""Resuming a training run from an older state, a changed setup, or a finished run."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_train import TINY_YAML, tiny_config  # noqa: E402

from kgt5mm.errors import KGT5MMError  # noqa: E402
from kgt5mm.training import Trainer, latest_state  # noqa: E402

COMMON = ("train.max_steps=8", "train.save_every_steps=2", "train.eval_every_steps=2",
          "train.keep_states=10")


def _records(run_dir: Path, kind: str) -> list[dict]:
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return [r for r in map(json.loads, lines) if r["kind"] == kind]


def _best_step(run_dir: Path) -> int:
    return json.loads((run_dir / "best" / "metrics.json").read_text())["step"]


def test_resuming_an_older_state_sets_aside_what_the_abandoned_continuation_left(tmp_path):
    first = Trainer(tiny_config(tmp_path, *COMMON))
    first.fit(stop_after_steps=6)
    run = first.run_dir
    assert [p.name for p in sorted((run / "states").iterdir())] == ["step_2", "step_4", "step_6"]
    # a state resumed again with the same stop does no further step (was one step per call)
    again = Trainer(tiny_config(tmp_path, *COMMON)).fit(resume="auto", stop_after_steps=6)
    assert again.global_step == 6 and max(r["step"] for r in _records(run, "train")) == 6
    # pretend the abandoned continuation's step 4 was its best: best/ then holds weights that
    # the step-2 state never recorded as best
    meta = json.loads((run / "best" / "metrics.json").read_text())
    (run / "best" / "metrics.json").write_text(json.dumps({**meta, "step": 4}))
    resumed = Trainer(tiny_config(tmp_path, *COMMON))
    result = resumed.fit(resume=run / "states" / "step_2")
    names = sorted(p.name for p in (run / "states").iterdir())
    assert "abandoned-step_4" in names and "abandoned-step_6" in names
    assert latest_state(run).name == "step_8" and (run / "abandoned-best").is_dir()
    # the best is tracked afresh after step 2, and best/ holds exactly the recorded best step
    assert result.best_step in (4, 6, 8) and _best_step(run) == result.best_step
    # validations are logged once per step, the final one included (it is saved with the state)
    steps = [r["step"] for r in _records(run, "valid")]
    assert steps == [2, 4, 6, 8]
    Trainer(tiny_config(tmp_path, *COMMON)).fit(resume="auto")  # resuming a finished run
    assert [r["step"] for r in _records(run, "valid")] == steps


def test_a_resume_with_another_number_of_processes_is_refused(tmp_path):
    trainer = Trainer(tiny_config(tmp_path, "train.max_steps=4"))
    trainer.fit(stop_after_steps=2)
    saved = latest_state(trainer.run_dir) / "custom_checkpoint_0.pkl"
    state = torch.load(saved, weights_only=False)
    assert state["num_processes"] == 1
    torch.save({**state, "num_processes": 2}, saved)
    with pytest.raises(KGT5MMError, match="saved by a run with 2 processes and this one has 1"):
        Trainer(tiny_config(tmp_path, "train.max_steps=4")).fit(resume="auto")


def test_the_run_folder_tokenizer_must_match_the_tokenizer_settings(tmp_path):
    Trainer(tiny_config(tmp_path, "train.max_steps=1"))
    Trainer(tiny_config(tmp_path, "train.max_steps=1"))  # same settings: reused
    with pytest.raises(KGT5MMError, match=r"made with other settings \(tokenizer.vocab_size: 600 -> 500\)"):
        Trainer(tiny_config(tmp_path, "train.max_steps=1", "tokenizer.vocab_size=500"))


def test_resume_followed_by_an_override_keeps_the_override(capsys):
    import argparse

    from kgt5mm.commands.train import add_arguments, run

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(["--config", str(TINY_YAML), "--resume", "train.lr=5e-4", "--print-config"])
    assert run(args) == 0
    assert "lr: 0.0005" in capsys.readouterr().out and args.resume == "auto"
    args = parser.parse_args(["--config", str(TINY_YAML), "--stop-after-steps", "0"])
    with pytest.raises(KGT5MMError, match="--stop-after-steps must be >= 1, got 0"):
        run(args)


def test_a_graph_without_training_triples_is_an_error(tmp_path, monkeypatch):
    # it used to plan one step per "epoch" of zero batches and loop forever
    from kgt5mm.data import KnowledgeGraph
    from kgt5mm.training import loop

    empty = KnowledgeGraph.from_triples(train=[], valid=[("a", "r", "b")], test=[("b", "r", "a")], name="empty")
    monkeypatch.setattr(loop, "_load_graph", lambda config: empty)
    with pytest.raises(KGT5MMError, match="graph empty has no training triples"):
        Trainer(tiny_config(tmp_path, "train.max_steps=2"))

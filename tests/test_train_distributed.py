"""Two CPU processes (gloo, launched by torchrun): training runs, ranks stay identical, every
validation query is evaluated exactly once and every training example is seen.

The test starts this file as the worker: ``torchrun --nproc_per_node 2 THIS_FILE OUT_DIR``.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _worker(out_dir: Path) -> None:
    import numpy as np

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from accelerate.utils import gather_object
    from test_train import tiny_config

    from kgt5mm.commands import close_process_group
    from kgt5mm.evaluation import evaluate
    from kgt5mm.training import Trainer

    trainer = Trainer(tiny_config(out_dir, "train.max_steps=6", "train.eval_queries=12",
                                  "model.dropout_rate=0.1"))
    result = trainer.fit()
    acc = trainer.accelerator
    model = acc.unwrap_model(trainer.model)
    digest = hashlib.sha256()
    for name, value in sorted(model.state_dict().items()):
        digest.update(name.encode() + value.detach().cpu().numpy().tobytes())
    data = trainer._epoch(0)  # this rank's batches of epoch 0 (the same call the loop makes)
    seen = np.concatenate(data.batches).tolist()
    evaluated = evaluate(model, trainer.tokenizer, trainer.kg, trainer.builder, split="valid",
                         queries=trainer.valid_queries, config=trainer.config.eval, accelerator=acc)
    report = gather_object([{
        "rank": acc.process_index, "world": acc.num_processes, "digest": digest.hexdigest(),
        "seen": seen, "num_examples": len(trainer.queries), "steps": result.global_step,
        "valid_queries": sorted(map(tuple, trainer.valid_queries.tolist())),
        "evaluated": sorted(map(tuple, evaluated.queries.tolist())),
        "num_queries": evaluated.metrics["num_queries"],
    }])
    if acc.is_main_process:
        (out_dir / "report.json").write_text(json.dumps(report))
    close_process_group()  # as the entry points do: an open gloo group can abort at exit


@pytest.mark.timeout(300)
def test_two_cpu_processes(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               __file__, str(tmp_path)]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-4000:]
    report = json.loads((tmp_path / "report.json").read_text())
    assert [r["rank"] for r in report] == [0, 1] and {r["world"] for r in report} == {2}
    assert report[0]["steps"] == report[1]["steps"] == 6
    assert report[0]["digest"] == report[1]["digest"]  # parameters identical across ranks
    # the two ranks' training batches together cover every example (none skipped)
    assert set(report[0]["seen"]) | set(report[1]["seen"]) == set(range(report[0]["num_examples"]))
    assert set(report[0]["seen"]) != set(report[1]["seen"])
    # validation: each query evaluated exactly once over both ranks, results the same on both
    for rank in report:
        assert rank["evaluated"] == rank["valid_queries"] and rank["num_queries"] == 12
    assert json.loads((tmp_path / "wn9_img_tiny" / "metrics.jsonl").read_text().splitlines()[-1])


if __name__ == "__main__":
    _worker(Path(sys.argv[1]))


def test_entry_points_close_the_process_group(tmp_path):
    """The CLI tears down an open process group on its way out (see close_process_group)."""
    import torch.distributed as dist

    from kgt5mm import cli

    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    assert dist.is_initialized()
    assert cli.main(["data", "list"]) == 0
    assert not dist.is_initialized()

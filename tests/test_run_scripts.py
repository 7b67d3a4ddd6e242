"""The per-dataset launch scripts: they train the named recipe and write its JSON record."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = ROOT / "run_scripts"


def _run(args, tmp_path, **env):
    environ = {**os.environ, "KGT5MM_RESULTS_DIR": str(tmp_path / "results"), **env}
    return subprocess.run(["bash", *map(str, args)], cwd=ROOT, capture_output=True, text=True,
                          env=environ, timeout=600)


def test_launch_trains_and_records(tmp_path):
    out = _run([SCRIPTS / "launch.sh", "python", "run_scripts/wn9_img_tiny.yaml", "-q",
                f"train.output_dir={tmp_path}", "name=launched", "train.max_steps=3",
                "train.eval_every_steps=3", "train.eval_queries=8"], tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    records = list((tmp_path / "results").glob("run-launched-*.json"))
    assert len(records) == 1
    record = json.loads(records[0].read_text())
    assert record["dataset"] == "wn9_img_tiny"
    assert record["training_command"].startswith("python train.py --config run_scripts/wn9_img_tiny.yaml")
    assert record["figures"]["steps"] == 3
    assert record["figures"]["wall_minutes"] >= 0
    assert (tmp_path / "launched" / "model").is_dir()


@pytest.mark.parametrize(("script", "profile", "command"), [
    ("wn9_img.sh", "cpu-hour", "python train.py --config run_scripts/wn9_img_cpu_60min.yaml"),
    ("mkg_y.sh", "cpu-2proc", "torchrun --standalone --nproc_per_node 2 train.py --config run_scripts/mkg_y_cpu_2proc.yaml"),
    ("mkg_w.sh", "cpu", "python train.py --config run_scripts/mkg_w_cpu.yaml"),
])
def test_dataset_scripts_name_existing_configs(script, profile, command, tmp_path):
    text = (SCRIPTS / script).read_text()
    configs = re.findall(r"\((\w+)\.yaml\)", text)  # the header maps each profile to its config
    assert configs and all((SCRIPTS / f"{c}.yaml").is_file() for c in configs)
    assert _run([SCRIPTS / script, "--help"], tmp_path).returncode == 0
    bad = _run([SCRIPTS / script, "no-such-profile"], tmp_path)
    assert bad.returncode == 2 and "PROFILE" in bad.stderr
    # a profile resolves to its launcher and config (train.py --help: nothing is trained)
    out = _run([SCRIPTS / script, profile, "--help"], tmp_path, KGT5MM_NO_RECORD="1")
    assert out.returncode == 0 and f"+ {command} --help" in out.stderr


def test_dataset_script_refuses_a_profile_it_does_not_list(tmp_path):
    out = _run([SCRIPTS / "mkg_y.sh", "cpu-hour"], tmp_path)
    assert out.returncode == 2 and "no profile 'cpu-hour'" in out.stderr


def test_launch_refuses_unknown_launcher_and_missing_config(tmp_path):
    out = _run([SCRIPTS / "launch.sh", "mpirun", "run_scripts/wn9_img_tiny.yaml"], tmp_path)
    assert out.returncode == 2 and "unknown launcher 'mpirun'" in out.stderr
    out = _run([SCRIPTS / "launch.sh", "python", "run_scripts/nope.yaml"], tmp_path)
    assert out.returncode == 2 and "no such config: run_scripts/nope.yaml" in out.stderr
    assert not (tmp_path / "results").exists()

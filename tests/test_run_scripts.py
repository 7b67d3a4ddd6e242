"""The per-dataset launch scripts: they train the named recipe and write its JSON record."""

from __future__ import annotations

import json
import os
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


@pytest.mark.parametrize("script", ["wn9_img.sh", "mkg_y.sh", "mkg_w.sh"])
def test_dataset_scripts_name_existing_configs(script, tmp_path):
    text = (SCRIPTS / script).read_text()
    configs = [line.split("config=")[1].split()[0].rstrip(";")
               for line in text.splitlines() if "config=" in line and ")" in line.split("config=")[0]]
    assert configs and all((SCRIPTS / f"{c}.yaml").is_file() for c in configs)
    assert _run([SCRIPTS / script, "--help"], tmp_path).returncode == 0
    bad = _run([SCRIPTS / script, "no-such-profile"], tmp_path)
    assert bad.returncode == 2 and "PROFILE" in bad.stderr


def test_launch_refuses_unknown_launcher_and_missing_config(tmp_path):
    out = _run([SCRIPTS / "launch.sh", "mpirun", "run_scripts/wn9_img_tiny.yaml"], tmp_path)
    assert out.returncode == 2 and "unknown launcher 'mpirun'" in out.stderr
    out = _run([SCRIPTS / "launch.sh", "python", "run_scripts/nope.yaml"], tmp_path)
    assert out.returncode == 2 and "no such config: run_scripts/nope.yaml" in out.stderr
    assert not (tmp_path / "results").exists()

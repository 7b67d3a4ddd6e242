"""Atomic output: a failed write leaves the old file intact and no temporary file behind."""

from __future__ import annotations

import json

import pytest

from kgt5mm.files import atomic_path, atomic_write_bytes, atomic_write_json, atomic_write_text


def test_writes_create_folders_and_content(tmp_path):
    atomic_write_text(tmp_path / "a" / "x.txt", "héllo")
    atomic_write_bytes(tmp_path / "b.bin", b"\x00\x01")
    atomic_write_json(tmp_path / "c.json", {"mrr": 0.5})
    assert (tmp_path / "a" / "x.txt").read_text(encoding="utf-8") == "héllo"
    assert (tmp_path / "b.bin").read_bytes() == b"\x00\x01"
    assert json.loads((tmp_path / "c.json").read_text()) == {"mrr": 0.5}


def test_failure_keeps_the_old_file_and_removes_the_temporary(tmp_path):
    target = tmp_path / "metrics.json"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half-writ")
        raise RuntimeError("crash mid-write")
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.json"]


def test_temporary_keeps_the_suffix_for_format_sniffing_writers(tmp_path):
    with atomic_path(tmp_path / "plot.png") as tmp:
        assert tmp.suffix == ".png" and tmp.parent == tmp_path
        tmp.write_bytes(b"png")
    assert (tmp_path / "plot.png").read_bytes() == b"png"


def test_outputs_get_the_umask_mode_or_keep_the_replaced_files_mode(tmp_path):
    import os
    import stat

    umask = os.umask(0o022)
    try:
        atomic_write_text(tmp_path / "new.txt", "x")  # mkstemp alone would leave it 0600
        assert stat.S_IMODE((tmp_path / "new.txt").stat().st_mode) == 0o644
        (tmp_path / "kept.txt").write_text("old")
        os.chmod(tmp_path / "kept.txt", 0o640)
        atomic_write_text(tmp_path / "kept.txt", "new")
        assert stat.S_IMODE((tmp_path / "kept.txt").stat().st_mode) == 0o640
    finally:
        os.umask(umask)


def test_atomic_dir_replaces_its_own_kind_only_and_keeps_the_old_on_failure(tmp_path):
    from kgt5mm.errors import KGT5MMError
    from kgt5mm.files import atomic_dir

    target = tmp_path / "model"
    with atomic_dir(target, marker="marker.json") as tmp:
        (tmp / "marker.json").write_text("1")
    with pytest.raises(RuntimeError), atomic_dir(target, marker="marker.json") as tmp:
        (tmp / "marker.json").write_text("2")
        raise RuntimeError("crash while writing")
    assert (target / "marker.json").read_text() == "1"
    with atomic_dir(target, marker="marker.json") as tmp:
        (tmp / "marker.json").write_text("3")
    assert (target / "marker.json").read_text() == "3"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep")
    with pytest.raises(KGT5MMError, match="refusing"), atomic_dir(tmp_path / "mine", marker="marker.json"):
        pass
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep"

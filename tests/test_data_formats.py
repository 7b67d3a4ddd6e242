"""Tests of the loaders on the real benchmarks (shared data), the generic format, Parquet
export/import and the ``kgt5mm data`` command."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from kgt5mm.data import KnowledgeGraph, load_graph, verify_dataset
from kgt5mm.data.formats import detect_format
from kgt5mm.errors import KGT5MMError
from kgt5mm.typing import SPLITS

MKG_COUNTS = {
    "mkg_w": (15000, 169, 34196, 4276, 4274),
    "mkg_y": (15000, 28, 21310, 2665, 2663),
}


@pytest.fixture(scope="module")
def mkg(shared_data_dir: Path) -> dict[str, KnowledgeGraph]:
    return {name: load_graph(name, data_dir=shared_data_dir) for name in MKG_COUNTS}


# ---------------------------------------------------------------- real benchmarks
@pytest.mark.parametrize("name", sorted(MKG_COUNTS))
def test_mkg_counts_and_names(mkg: dict[str, KnowledgeGraph], name: str) -> None:
    kg = mkg[name]
    E, R, tr, va, te = MKG_COUNTS[name]
    assert (kg.num_entities, kg.num_relations) == (E, R)
    assert [len(kg.splits[s]) for s in SPLITS] == [tr, va, te]
    assert len(set(kg.entity_names)) == E
    for index, entity_name in enumerate(kg.entity_names):
        assert kg.entity_index(entity_name) == index
    assert not any("_" in n for n in kg.raw_entity_names)  # underscores became spaces
    assert kg.entity_vlm_text is not None and len(kg.entity_vlm_text) == E
    assert not any(t.startswith(" ") for t in kg.entity_vlm_text)
    assert len(kg.relation_texts) == 2 * R == len(set(kg.relation_texts))
    assert kg.relation_templates is not None
    assert all("[A]" in t and "[B]" in t for t in kg.relation_templates)


def test_mkg_w_details(mkg: dict[str, KnowledgeGraph]) -> None:
    kg = mkg["mkg_w"]
    assert kg.entity_names[0] == "My Darling Clementine"
    assert kg.entity_ids[0] == "http://www.wikidata.org/entity/Q370252"
    assert kg.entity_types is not None and kg.entity_types[0] == "Film"
    assert kg.entity_vlm_text[0].startswith('"My Darling Clementine" is a classic Western')
    R = kg.num_relations
    assert kg.relation_templates[0] == "[A] has cast_member [B]."
    assert kg.relation_templates[R] == "[B] has cast_member [A]."
    assert kg.relation_texts[0] == "has cast member"
    assert kg.relation_texts[R] == "reverse of cast member"
    assert kg.relation_texts[R + 4] == "is the narrative location of"
    assert kg.skipped == {
        "ficha_relation_templates.txt: inverse templates with repeated wording "
        "(swapped forward template used)": 2
    }


def test_mkg_y_templates(mkg: dict[str, KnowledgeGraph]) -> None:
    kg = mkg["mkg_y"]
    R = kg.num_relations
    born = kg.relation_ids.index("wasBornIn")
    assert kg.relation_texts[born] == "was born in"
    assert kg.relation_templates[born + R] == "[A] is the place of birth of [B]."
    assert kg.relation_texts[born + R] == "is the place of birth of"
    edited = kg.relation_ids.index("edited")
    assert kg.relation_templates[edited + R] == "[B] edited [A]."  # "[A] deals [B]." replaced
    assert (
        kg.skipped["ficha_relation_templates.txt: swapped repeats of the first 2R templates"] == 56
    )
    assert kg.entity_types is None and kg.entity_descriptions is None


def test_wn9_from_shared_data_equals_embedded(shared_data_dir: Path) -> None:
    shared = load_graph(shared_data_dir / "wn9_img")
    embedded = load_graph("wn9_img")
    assert shared.entity_names == embedded.entity_names
    for split in SPLITS:
        np.testing.assert_array_equal(shared.splits[split], embedded.splits[split])
    assert detect_format(shared_data_dir / "wn9_img") == "ikrl"
    assert detect_format(shared_data_dir / "mkg_w") == "openke"


@pytest.mark.parametrize("name", ["wn9_img", "mkg_w", "mkg_y"])
def test_registry_checksums_match_shared_data(shared_data_dir: Path, name: str) -> None:
    result = verify_dataset(name, shared_data_dir / name)
    assert result and all(result.values()), result


def test_env_var_data_dir(shared_data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KGT5MM_DATA_DIR", str(shared_data_dir))
    assert load_graph("mkg_y").num_relations == 28


# ---------------------------------------------------------------- generic format
def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def make_generic(folder: Path) -> Path:
    write(
        folder / "train.tsv", "head\trelation\ttail\nQ1\tlikes\tQ2\nQ2\tlikes\tQ3\nBass\teats\tQ1\n"
    )
    write(folder / "valid.tsv", "Q1\tlikes\tQ3\n")
    write(folder / "test.tsv", "Q3\tl1\tQ2\n")
    write(
        folder / "entities.tsv",
        "id\tname\tdescription\n"
        "Q1\tcat\ta small feline\n"
        "Q2\tbass\ta fish of the perch family\n"
        "Q3\tbass\tthe lowest adult male singing voice\n"
        "Q4\tBass\tsurname\n",
    )
    write(folder / "relations.tsv", "l1\tlikes\tis liked by\nl2\teats\n")
    (folder / "images").mkdir()
    (folder / "images" / "Q1_front.png").write_bytes(b"\x89PNG fake")
    (folder / "images" / "Q1.jpg").write_bytes(b"jpg")
    (folder / "images" / "Q9_other.png").write_bytes(b"png")
    (folder / "images" / "notes.txt").write_text("not an image")
    write(folder / "images.tsv", "Q2\timages/Q9_other.png\n")
    return folder


def test_generic_format(tmp_path: Path) -> None:
    folder = make_generic(tmp_path / "mine")
    assert detect_format(folder) == "generic"
    kg = load_graph(folder)
    assert kg.name == "mine"
    assert kg.entity_ids == ["Q1", "Q2", "Q3", "Q4"]
    assert kg.entity_names == ["cat", "bass (fish)", "bass (lowest)", "Bass"]
    assert kg.relation_texts == ["likes", "eats", "is liked by", "reverse of eats"]
    # "Bass" is matched by name (unique), "likes" by relation text, "l1" by id
    np.testing.assert_array_equal(kg.splits["train"], [[0, 0, 1], [1, 0, 2], [3, 1, 0]])
    np.testing.assert_array_equal(kg.splits["test"], [[2, 0, 1]])
    assert [Path(p).name for p in kg.entity_images[0]] == ["Q1.jpg", "Q1_front.png"]
    assert [Path(p).name for p in kg.entity_images[1]] == ["Q9_other.png"]
    assert kg.skipped == {"images/ files matching no entity id": 1}
    assert kg.entity_descriptions[3] == "surname" and kg.entity_vlm_text is None


def test_generic_without_entity_file(tmp_path: Path) -> None:
    write(tmp_path / "g" / "train.tsv", "a\tr\tb\nb\tr\tc\n")
    kg = load_graph(tmp_path / "g")
    assert kg.entity_names == ["a", "b", "c"] and len(kg.splits["valid"]) == 0
    assert kg.entity_descriptions is None and kg.entity_images is None


# ---------------------------------------------------------------- Parquet / HF datasets
def assert_same_graph(a: KnowledgeGraph, b: KnowledgeGraph) -> None:
    assert a.entity_ids == b.entity_ids and a.entity_names == b.entity_names
    assert a.raw_entity_names == b.raw_entity_names
    assert a.relation_ids == b.relation_ids and a.relation_texts == b.relation_texts
    assert a.entity_descriptions == b.entity_descriptions and a.entity_vlm_text == b.entity_vlm_text
    assert a.entity_types == b.entity_types and a.relation_templates == b.relation_templates
    for split in SPLITS:
        np.testing.assert_array_equal(a.splits[split], b.splits[split])


def test_export_and_load_parquet_folder(tmp_path: Path) -> None:
    tiny = load_graph("wn9_img_tiny")
    out = tiny.save_hf(tmp_path / "export")
    assert detect_format(out) == "hf"
    manifest = json.loads((out / "kgt5mm_graph.json").read_text())
    assert manifest["num_entities"] == tiny.num_entities
    assert "config_name: triples" in (out / "README.md").read_text()
    back = load_graph(out)
    assert back.name == "wn9_img_tiny"
    assert_same_graph(tiny, back)
    cat = back.entity_index("house cat")
    assert len(back.entity_images[cat]) == 1
    assert (
        Path(back.entity_images[cat][0]).read_bytes()
        == Path(tiny.entity_images[cat][0]).read_bytes()
    )
    # re-exported over itself (images read from the folder being replaced): one whole export
    again = load_graph(back.save_hf(out))
    assert_same_graph(tiny, again)
    assert Path(again.entity_images[cat][0]).read_bytes() == Path(tiny.entity_images[cat][0]).read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["export"]  # no temporary folders left
    # a folder of other files is never replaced
    other = tmp_path / "notes"
    other.mkdir()
    (other / "mine.txt").write_text("keep me")
    with pytest.raises(KGT5MMError, match="refusing to replace"):
        tiny.save_hf(other)
    assert (other / "mine.txt").read_text() == "keep me"


def test_datasets_round_trip() -> None:
    tiny = load_graph("wn9_img_tiny")
    dataset = tiny.to_hf_dataset()
    assert set(dataset) == {"train", "valid", "test", "entities", "relations"}
    assert dataset["train"].num_rows == len(tiny.splits["train"])
    assert dataset["train"][0]["head_name"] == tiny.entity_names[tiny.splits["train"][0, 0]]
    back = KnowledgeGraph.from_hf_dataset(dataset, name="tiny")
    assert_same_graph(tiny, back)


def test_export_mkg_round_trip(mkg: dict[str, KnowledgeGraph], tmp_path: Path) -> None:
    kg = mkg["mkg_w"]
    back = load_graph(kg.save_hf(tmp_path / "mkg_w_hf"))
    assert_same_graph(kg, back)


# ---------------------------------------------------------------- command line
def run_data_command(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    import argparse

    from kgt5mm.commands import data

    parser = argparse.ArgumentParser(prog="kgt5mm")
    data.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    status = args.handler(args)
    return status, capsys.readouterr().out


def test_data_check_command(capsys: pytest.CaptureFixture[str]) -> None:
    status, out = run_data_command(["data", "check", "wn9_img"], capsys)
    assert status == 0
    assert "| entities " in out and "6,555" in out and "11,741" in out
    assert "| shared names (before disambiguation)" in out and "272" in out
    assert "test entities unseen in train" in out
    status, out = run_data_command(["data", "check", "wn9_img_tiny", "--json"], capsys)
    stats = json.loads(out)
    assert stats["entities without images"] == str(int(stats["entities"]) - 11)


def test_data_check_verify_and_export(
    shared_data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out = run_data_command(
        ["data", "check", "mkg_y", "--data-dir", str(shared_data_dir), "--verify"], capsys
    )
    assert status == 0 and "9/9 match" in out and "2,663" in out
    status, out = run_data_command(["data", "export", "wn9_img_tiny", str(tmp_path / "o")], capsys)
    assert status == 0 and (tmp_path / "o" / "triples" / "train.parquet").is_file()


def test_data_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        run_data_command(["data", "check", "--help"], capsys)
    out = capsys.readouterr().out
    assert "--data-dir" in out and "--verify" in out and "statistics" in out


def test_from_hub_id_uses_snapshot_download(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import huggingface_hub

    tiny = load_graph("wn9_img_tiny")
    folder = tiny.save_hf(tmp_path / "snapshot")
    calls = []

    def fake_snapshot_download(*, repo_id: str, repo_type: str) -> str:
        calls.append((repo_id, repo_type))
        return str(folder)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_snapshot_download)
    back = KnowledgeGraph.from_hf_dataset("someone/wn9-tiny")
    assert calls == [("someone/wn9-tiny", "dataset")]
    assert back.name == "wn9-tiny"
    assert_same_graph(tiny, back)


def test_relation_and_id_lookups() -> None:
    kg = load_graph("wn9_img_tiny")
    hypernym = kg.relation_index("_hypernym")
    assert kg.relation_index("hypernym") == hypernym
    assert kg.entity_index_by_id("n02121808") == kg.entity_index("house cat")
    with pytest.raises(KeyError, match="no relation"):
        kg.relation_index("reverse of nothing")

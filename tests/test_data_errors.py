"""One test per bad-input case: the error names the file, the line and the value.

Cases (issue 2): wrong column counts, unknown ids, empty names, undecodable bytes, duplicate
ids, empty splits, triples that reference entities missing from the id map. Each is checked in
the format where it naturally occurs (IKRL, OpenKE + ficha_*, generic TSV).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from kgt5mm.data import load_graph
from kgt5mm.errors import DataFormatError

# ---------------------------------------------------------------- small valid datasets
IKRL_FILES = {
    "ikrl/entity2id.txt": "n01\t0\r\nn02\t1\r\nn03\t2\r\n",
    "ikrl/relation2id.txt": "_hypernym\t0\r\n_has_part\t1\r\n",
    "ikrl/train.txt": "n01\tn02\t_hypernym\r\nn02\tn03\t_has_part\r\nn03\tn01\t_hypernym\r\n",
    "ikrl/valid.txt": "n01\tn03\t_has_part\r\n",
    "ikrl/test.txt": "n02\tn01\t_hypernym\r\n",
    "wn9_entity2text.tsv": "01\tdog, a domestic animal\n02\tanimal, a living thing\n03\tdog, a lazy person\n",
    "wn18_relation2text.txt": "_hypernym\thypernym\n_has_part\thas part\n",
}

OPENKE_FILES = {
    "entity2id.txt": "3\nQ1 0\nQ2 1\nQ3 2\n",
    "relation2id.txt": "2\nP1 0\nP2 1\n",
    "train.txt": "0\t0\t1\n1\t1\t2\n2\t0\t0\n",
    "valid.txt": "0\t1\t2\n",
    "test.txt": "1\t0\t0\n",
    "ficha_entity_mentions.del": "0\tCat\n1\tDog_House\n2\tFish\n",
    "ficha_relation_mentions.del": "0\tlikes\n1\tlives_in\n",
    "ficha_relation_templates.txt": "2\n0\tTemplate: [A] likes [B].\n1\tTemplate: [A] lives in [B].\n"
    "2\tTemplate: [B] likes [A].\n3\tTemplate: [A] is home of [B].\n",
    "ficha_vlm_desc_setting3.txt": "3\n0\t A cat.\n1\t A dog house.\n2\t A fish.\n",
}

GENERIC_FILES = {
    "train.tsv": "a\tr\tb\nb\tr\tc\n",
    "valid.tsv": "a\tr\tc\n",
    "test.tsv": "c\tr\ta\n",
    "entities.tsv": "a\tAlpha\tfirst\nb\tBeta\tsecond\nc\tGamma\tthird\n",
}


def make(tmp_path: Path, files: dict[str, str], **changes: str | bytes) -> Path:
    folder = tmp_path / "data"
    for name, content in {**files, **changes}.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_bytes(content.encode("utf-8"))
    return folder


def expect_error(
    folder: Path, file_name: str, line: int, value: str | None = None
) -> DataFormatError:
    with pytest.raises(DataFormatError) as info:
        load_graph(folder)
    error = info.value
    message = str(error)
    assert f"{file_name}:{line}:" in message, message
    assert error.path.endswith(file_name) and error.line == line
    if value is not None:
        assert re.search(re.escape(repr(value)), message), message
    return error


def test_valid_mini_datasets_load(tmp_path: Path) -> None:
    kg = load_graph(make(tmp_path / "i", IKRL_FILES))
    assert kg.entity_names == ["dog (domestic)", "animal", "dog (lazy)"]
    kg = load_graph(make(tmp_path / "o", OPENKE_FILES))
    assert kg.entity_names == ["Cat", "Dog House", "Fish"]
    assert kg.relation_texts == ["likes", "lives in", "reverse of likes", "is home of"]
    kg = load_graph(make(tmp_path / "g", GENERIC_FILES))
    assert kg.entity_names == ["Alpha", "Beta", "Gamma"]


# ---------------------------------------------------------------- wrong column counts
def test_wrong_column_count_ikrl(tmp_path: Path) -> None:
    folder = make(tmp_path, IKRL_FILES, **{"ikrl/train.txt": "n01\tn02\t_hypernym\r\nn02\tn03\r\n"})
    expect_error(folder, "train.txt", 2, "n02\tn03")


def test_wrong_column_count_openke(tmp_path: Path) -> None:
    folder = make(tmp_path, OPENKE_FILES, **{"valid.txt": "0\t1\t2\n0\t1\t2\t5\n"})
    expect_error(folder, "valid.txt", 2, "0\t1\t2\t5")


def test_wrong_column_count_generic(tmp_path: Path) -> None:
    folder = make(tmp_path, GENERIC_FILES, **{"test.tsv": "c\tr\ta\nc r a\n"})
    expect_error(folder, "test.tsv", 2, "c r a")


# ---------------------------------------------------------------- unknown ids
def test_unknown_relation_id_ikrl(tmp_path: Path) -> None:
    folder = make(
        tmp_path, IKRL_FILES, **{"ikrl/test.txt": "n02\tn01\t_hypernym\r\nn02\tn01\t_part_of\r\n"}
    )
    expect_error(folder, "test.txt", 2, "_part_of")


def test_unknown_id_in_entity_text(tmp_path: Path) -> None:
    text = IKRL_FILES["wn9_entity2text.tsv"] + "99\tghost, not in the graph\n"
    folder = make(tmp_path, IKRL_FILES, **{"wn9_entity2text.tsv": text})
    expect_error(folder, "wn9_entity2text.tsv", 4, "99")


def test_non_integer_id_openke(tmp_path: Path) -> None:
    folder = make(tmp_path, OPENKE_FILES, **{"train.txt": "0\t0\t1\n1\tx\t2\n"})
    expect_error(folder, "train.txt", 2, "x")


@pytest.mark.parametrize("value", ["1_0", "\u0661", "+"])
def test_integer_forms_int_accepts_but_files_should_not_hold(tmp_path: Path, value: str) -> None:
    # int() reads "1_0" as 10 and Arabic-Indic digits as digits; an id file holding them is broken.
    folder = make(tmp_path, OPENKE_FILES, **{"train.txt": f"0\t0\t1\n1\t{value}\t2\n"})
    expect_error(folder, "train.txt", 2, value)


def test_count_header_with_digit_separator_openke(tmp_path: Path) -> None:
    folder = make(tmp_path, OPENKE_FILES, **{"relation2id.txt": "1_0\nP1 0\nP2 1\n"})
    expect_error(folder, "relation2id.txt", 1, "1_0")


def test_id_beyond_int64_openke(tmp_path: Path) -> None:
    folder = make(tmp_path, OPENKE_FILES, **{"train.txt": "0\t0\t1\n1\t0\t99999999999999999999\n"})
    expect_error(folder, "train.txt", 2, "99999999999999999999")


# ---------------------------------------------------------------- empty names
def test_empty_name_openke(tmp_path: Path) -> None:
    folder = make(
        tmp_path, OPENKE_FILES, **{"ficha_entity_mentions.del": "0\tCat\n1\t__\n2\tFish\n"}
    )
    expect_error(folder, "ficha_entity_mentions.del", 2, "__")


def test_empty_name_generic(tmp_path: Path) -> None:
    folder = make(tmp_path, GENERIC_FILES, **{"entities.tsv": "a\tAlpha\nb\t \nc\tGamma\n"})
    expect_error(folder, "entities.tsv", 2, "b")


def test_empty_name_ikrl(tmp_path: Path) -> None:
    text = "01\tdog, a domestic animal\n02\t, nameless\n03\tdog, a lazy person\n"
    folder = make(tmp_path, IKRL_FILES, **{"wn9_entity2text.tsv": text})
    expect_error(folder, "wn9_entity2text.tsv", 2, ", nameless")


# ---------------------------------------------------------------- undecodable bytes
def test_undecodable_bytes(tmp_path: Path) -> None:
    data = b"0\tCat\n1\tDog\xff\xfeHouse\n2\tFish\n"
    folder = make(tmp_path, OPENKE_FILES, **{"ficha_entity_mentions.del": data})
    error = expect_error(folder, "ficha_entity_mentions.del", 2)
    assert "UTF-8" in str(error) and "\\xff" in str(error)


def test_undecodable_bytes_generic(tmp_path: Path) -> None:
    folder = make(tmp_path, GENERIC_FILES, **{"train.tsv": b"a\tr\tb\nb\tr\tc\n\xe9t\xe9\tr\ta\n"})
    expect_error(folder, "train.tsv", 3)


# ---------------------------------------------------------------- duplicate ids
def test_duplicate_entity_id_ikrl(tmp_path: Path) -> None:
    folder = make(tmp_path, IKRL_FILES, **{"ikrl/entity2id.txt": "n01\t0\r\nn02\t1\r\nn01\t2\r\n"})
    error = expect_error(folder, "entity2id.txt", 3, "n01")
    assert "first on line 1" in str(error)


def test_duplicate_index_openke(tmp_path: Path) -> None:
    folder = make(tmp_path, OPENKE_FILES, **{"relation2id.txt": "2\nP1 0\nP2 0\n"})
    expect_error(folder, "relation2id.txt", 3, "0")


def test_duplicate_entity_id_generic(tmp_path: Path) -> None:
    folder = make(
        tmp_path, GENERIC_FILES, **{"entities.tsv": "a\tAlpha\nb\tBeta\nc\tGamma\nb\tBeta2\n"}
    )
    expect_error(folder, "entities.tsv", 4, "b")


def test_duplicate_description_row(tmp_path: Path) -> None:
    folder = make(
        tmp_path, OPENKE_FILES, **{"ficha_vlm_desc_setting3.txt": "3\n0\t A.\n1\t B.\n1\t C.\n"}
    )
    expect_error(folder, "ficha_vlm_desc_setting3.txt", 4, "1")


# ---------------------------------------------------------------- empty splits
def test_empty_split_ikrl(tmp_path: Path) -> None:
    folder = make(tmp_path, IKRL_FILES, **{"ikrl/valid.txt": ""})
    expect_error(folder, "valid.txt", 1)


def test_empty_split_openke(tmp_path: Path) -> None:
    folder = make(tmp_path, OPENKE_FILES, **{"test.txt": "\n\n"})
    expect_error(folder, "test.txt", 1)


def test_empty_split_generic_header_only(tmp_path: Path) -> None:
    folder = make(tmp_path, GENERIC_FILES, **{"valid.tsv": "head\trelation\ttail\n"})
    expect_error(folder, "valid.tsv", 1)


# ---------------------------------------------------------------- entities missing from the id map
def test_triple_with_entity_missing_from_id_map_ikrl(tmp_path: Path) -> None:
    folder = make(
        tmp_path, IKRL_FILES, **{"ikrl/train.txt": "n01\tn02\t_hypernym\r\nn07\tn03\t_has_part\r\n"}
    )
    expect_error(folder, "train.txt", 2, "n07")


def test_triple_with_entity_missing_from_id_map_openke(tmp_path: Path) -> None:
    folder = make(tmp_path, OPENKE_FILES, **{"valid.txt": "0\t1\t2\n0\t1\t3\n"})
    error = expect_error(folder, "valid.txt", 2)
    assert error.value == 3 and "tail entity" in str(error)


def test_triple_with_entity_missing_from_entity_file_generic(tmp_path: Path) -> None:
    folder = make(tmp_path, GENERIC_FILES, **{"train.tsv": "a\tr\tb\nb\tr\tzeta\n"})
    expect_error(folder, "train.tsv", 2, "zeta")


# ---------------------------------------------------------------- other malformed input
def test_count_header_mismatch_openke(tmp_path: Path) -> None:
    folder = make(tmp_path, OPENKE_FILES, **{"entity2id.txt": "4\nQ1 0\nQ2 1\nQ3 2\n"})
    expect_error(folder, "entity2id.txt", 1, 4)


def test_ambiguous_name_in_triples_generic(tmp_path: Path) -> None:
    folder = make(
        tmp_path,
        GENERIC_FILES,
        **{
            "entities.tsv": "a\tAlpha\nb\tSame\nc\tSame\n",
            "test.tsv": "c\tr\tSame\n",
        },
    )
    error = expect_error(folder, "test.tsv", 1, "Same")
    assert "use the id" in str(error)


def test_blank_lines_are_counted_not_silent(tmp_path: Path) -> None:
    folder = make(tmp_path, OPENKE_FILES, **{"train.txt": "0\t0\t1\n\n1\t1\t2\n2\t0\t0\n\n"})
    kg = load_graph(folder)
    assert len(kg.splits["train"]) == 3 and kg.skipped["blank lines"] == 2
    # blank lines of the id maps count too
    folder = make(tmp_path / "ids", OPENKE_FILES, **{"entity2id.txt": "3\nQ1 0\n\nQ2 1\nQ3 2\n"})
    kg = load_graph(folder)
    assert kg.num_entities == 3 and kg.skipped["blank lines"] == 1


def test_cli_prints_one_line_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import argparse

    from kgt5mm.commands import data

    folder = make(tmp_path, OPENKE_FILES, **{"valid.txt": "0\t1\t2\n0\t9\t2\n"})
    parser = argparse.ArgumentParser(prog="kgt5mm")
    data.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["data", "check", str(folder)])
    with pytest.raises(DataFormatError, match=r"valid\.txt:2: unknown relation id"):
        args.handler(args)

"""Tests of the caption cache (JSONL) and the loaders of precomputed caption text."""

from __future__ import annotations

import json

import pytest

from kgt5mm.context import (
    CaptionRecord,
    CaptionStore,
    ContextBuilder,
    ContextConfig,
    append_records,
    load_caption_file,
    load_vlm_desc_file,
    read_cache,
    repair_cache,
)
from kgt5mm.data import KnowledgeGraph, load_graph
from kgt5mm.errors import DataFormatError, KGT5MMError


@pytest.fixture(scope="module")
def toy() -> KnowledgeGraph:
    return KnowledgeGraph.from_triples(train=[("cat", "is_a", "feline"), ("dog", "is_a", "canine")])


def _record(i: int) -> CaptionRecord:
    return CaptionRecord(kind="relevance", entities=(f"e{i}",), images=(f"{i}.png",), model="m",
                         prompt_id="relevance_filter", prompt_version=1, p_yes=0.5, kept=True)


def test_cache_roundtrip_and_truncated_last_line(tmp_path):
    cache = tmp_path / "c.jsonl"
    assert append_records(cache, [_record(i) for i in range(3)]) == 3
    assert len(read_cache(cache).records) == 3
    with open(cache, "ab") as handle:
        handle.write(b'{"kind": "relev')
    result = read_cache(cache)
    assert result.truncated_last_line and len(result.records) == 3
    assert repair_cache(cache)
    assert cache.read_bytes().endswith(b"\n") and not read_cache(cache).truncated_last_line
    append_records(cache, [_record(3), _record(0)])
    result = read_cache(cache)
    assert len(result.records) == 4 and result.num_duplicates == 1


def test_complete_last_line_without_newline_is_kept(tmp_path):
    cache = tmp_path / "c.jsonl"
    cache.write_text(_record(0).to_json())
    assert not repair_cache(cache)
    append_records(cache, [_record(1)])
    assert len(read_cache(cache).records) == 2


def test_corrupt_middle_line_is_an_error(tmp_path):
    cache = tmp_path / "c.jsonl"
    cache.write_text(_record(0).to_json() + "\n{broken\n" + _record(1).to_json() + "\n")
    with pytest.raises(DataFormatError, match=":2"):
        read_cache(cache)


def test_user_tsv_and_jsonl(toy, tmp_path):
    tsv = tmp_path / "mine.tsv"
    tsv.write_text("# entity<TAB>text or entity<TAB>neighbour<TAB>text\ncat\tA cat.\ncat\tfeline\tCats are felines.\n")
    records = load_caption_file(tsv, toy)
    assert [r.kind for r in records] == ["description", "link"]
    jsonl = tmp_path / "mine.jsonl"
    jsonl.write_text(json.dumps({"kind": "description", "entities": ["dog"], "text": "A dog."}) + "\n")
    store = CaptionStore.from_files([tsv, jsonl], toy)
    assert store.entity(toy.entity_index("cat")) == "A cat."
    assert store.entity(toy.entity_index("dog")) == "A dog."
    assert store.link(toy.entity_index("feline"), toy.entity_index("cat")) == "Cats are felines."
    with pytest.raises(KGT5MMError, match="not found"):
        CaptionStore.from_files([tmp_path / "missing.jsonl"], toy)
    bad = tmp_path / "bad.tsv"
    bad.write_text("unicorn\tNot in the graph.\n")
    with pytest.raises(DataFormatError, match="unknown entity"):
        load_caption_file(bad, toy)
    text = ContextBuilder(toy, ContextConfig(num_examples=0), captions=store).build(
        toy.entity_index("cat"), 1)
    assert text == "<query> cat <rel> reverse of is_a <nbr> is_a feline <cap> Cats are felines. <vlm> A cat."


@pytest.mark.shared_data
def test_ficha_vlm_descriptions_load_like_the_graph(shared_data_dir):
    kg = load_graph("mkg_y", data_dir=shared_data_dir)
    path = shared_data_dir / "mkg_y" / "ficha_vlm_desc_setting3.txt"
    records = load_vlm_desc_file(path, kg)
    assert len(records) == kg.num_entities
    store = CaptionStore.from_records(records, kg)
    if kg.entity_vlm_text is not None:  # the MKG loader reads the same file into the graph
        same = sum(store.entity(e) == kg.entity_vlm_text[e].strip() for e in range(kg.num_entities))
        assert same >= 0.99 * kg.num_entities
    assert all(r.model == "import:ficha_vlm_desc_setting3.txt" for r in records)


def test_config_caption_files_feed_the_builder(toy, tmp_path):
    import yaml

    tsv = tmp_path / "mine.tsv"
    tsv.write_text("cat\tfeline\tCats are felines.\n")
    cfg = ContextConfig(num_examples=0, caption_files=[str(tsv)])
    assert ContextConfig.from_dict(yaml.safe_load(yaml.safe_dump(cfg.to_dict()))) == cfg
    text = ContextBuilder(toy, cfg).build(toy.entity_index("cat"), 1)
    assert "<cap> Cats are felines." in text


def test_caption_import_command(tmp_path, capsys):
    from kgt5mm.cli import main

    kg = load_graph("wn9_img_tiny")
    tsv = tmp_path / "mine.tsv"
    tsv.write_text(f"{kg.entity_names[0]}\tMy own description.\n"
                   f"{kg.entity_ids[0]}\t{kg.entity_ids[1]}\tMy own link caption.\n")
    cache = tmp_path / "c.jsonl"
    assert main(["caption", "wn9_img_tiny", "--cache", str(cache), "--import", str(tsv)]) == 0
    assert main(["caption", "wn9_img_tiny", "--cache", str(cache), "--import", str(tsv)]) == 0
    out = capsys.readouterr().out
    assert "2 records, 2 new or changed" in out and "2 records, 0 new or changed" in out
    store = CaptionStore.from_cache(cache, kg)
    assert store.entity(0) == "My own description." and store.link(1, 0) == "My own link caption."
    # an edited file imported again: the edited text replaces the old one
    tsv.write_text(f"{kg.entity_names[0]}\tMy better description.\n"
                   f"{kg.entity_ids[0]}\t{kg.entity_ids[1]}\tMy own link caption.\n")
    assert main(["caption", "wn9_img_tiny", "--cache", str(cache), "--import", str(tsv)]) == 0
    assert "2 records, 1 new or changed" in capsys.readouterr().out
    assert CaptionStore.from_cache(cache, kg).entity(0) == "My better description."
    assert main(["caption", "wn9_img_tiny", "--cache", str(cache)]) == 2  # no --model, no --import


def test_jsonl_with_model_fields_naming_entities_by_name_is_resolved_not_dropped(tmp_path):
    kg = load_graph("wn9_img_tiny")  # external ids (WordNet offsets) differ from the names
    assert kg.entity_ids[3] != kg.entity_names[3]
    path = tmp_path / "vlm.jsonl"
    record = {"kind": "description", "entities": [kg.entity_names[3]], "text": "A picture.",
              "model": "my-vlm", "prompt_id": "mine"}
    path.write_text(json.dumps(record) + "\n", encoding="utf-8")
    assert CaptionStore.from_files([path], kg).entity(3) == "A picture."
    # the same file naming an entity of no graph: an error naming the file and line
    path.write_text(json.dumps(record) + "\n" + json.dumps({**record, "entities": ["unicorn"]}) + "\n",
                    encoding="utf-8")
    with pytest.raises(DataFormatError, match=r"vlm\.jsonl:2.*unknown entity"):
        CaptionStore.from_files([path], kg)
    # a kgt5mm caption cache (entities by id) is read as a cache
    cache = tmp_path / "cache.jsonl"
    append_records(cache, [CaptionRecord(kind="description", entities=(kg.entity_ids[5],),
                                         model="m", prompt_id="p", text="Cached.")])
    assert CaptionStore.from_files([cache], kg).entity(5) == "Cached."


def test_merging_shards_keeps_retried_records_that_replace_cached_errors(tmp_path):
    """A multi-process ``--retry-errors`` run: the shard's ``ok`` record must replace the error."""
    from kgt5mm.vision.captioner import _merge_parts

    cache = tmp_path / "c.jsonl"
    failed = CaptionRecord(kind="description", entities=("e1",), images=("1.png",), model="m",
                           prompt_id="p", status="error", error="unreadable image")
    done = CaptionRecord(kind="description", entities=("e2",), images=("2.png",), model="m",
                         prompt_id="p", text="Two.")
    append_records(cache, [failed, done])
    retried = CaptionRecord(kind="description", entities=("e1",), images=("1.png",), model="m",
                            prompt_id="p", text="One.")
    append_records(cache.with_name("c.jsonl.part-0"), [retried])
    append_records(cache.with_name("c.jsonl.part-1"), [done])  # already in the cache
    _merge_parts(cache)
    result = read_cache(cache)
    assert result.records[retried.key].status == "ok" and result.records[retried.key].text == "One."
    assert result.records[done.key] == done
    assert result.num_lines == 3  # the unchanged record is not appended again
    assert not list(tmp_path.glob("c.jsonl.part-*"))

"""KGT5MMModel: save -> load round trip, model card, mocked push to the Hub."""

from __future__ import annotations

import json
from unittest import mock

import numpy as np
import pytest
import yaml
from test_eval_helpers import one_thread, tiny_setup

from kgt5mm.evaluation import EvalConfig
from kgt5mm.hub import CONFIG_FILE, ENTITY_FILE, KGT5MMModel


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    with one_thread():
        yield


def make_model(metrics=None) -> KGT5MMModel:
    s = tiny_setup()
    config = {"data": {"dataset": "wn9_img_tiny"}, "context": s.context_config.resolved().to_dict(),
              "eval": EvalConfig(num_beams=5, top_k=5).to_dict()}
    return KGT5MMModel.from_training(s.model, s.tokenizer, s.kg, config, metrics=metrics,
                                     metrics_split="test")


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    model = make_model()
    result = model.evaluate(split="test", config=EvalConfig(num_beams=5, top_k=5))
    model.metrics, model.metrics_split = result.metrics, "test"
    folder = model.save_pretrained(tmp_path_factory.mktemp("hub") / "model")
    return model, result, folder


def test_folder_layout_and_model_card(saved):
    model, result, folder = saved
    names = {p.name for p in folder.iterdir()}
    assert {"model.safetensors", "config.json", CONFIG_FILE, ENTITY_FILE, "README.md",
            "tokenizer.json", "tokenizer_config.json"} <= names
    assert not [p for p in folder.parent.iterdir() if p.name.endswith(".tmp")]
    card = (folder / "README.md").read_text()
    meta = yaml.safe_load(card.split("---")[1])
    assert meta["library_name"] == "kgt5mm" and meta["datasets"] == ["wn9_img_tiny"]
    values = {m["type"]: m["value"] for m in meta["model-index"][0]["results"][0]["metrics"]}
    assert values["mrr"] == pytest.approx(result.metrics["both.realistic.mrr"], abs=1e-6)
    assert "Decoding: beam 5, top 5;" in card  # the saved settings the metrics came from
    model.config["eval"]["candidate_views"] = 64
    assert "candidate views, up to 64" in model.model_card()
    model.config["eval"]["candidate_views"] = 0
    config = json.loads((folder / CONFIG_FILE).read_text())
    assert config["dataset"] == "wn9_img_tiny"
    assert config["prompts"] == {"context_source": config["config"]["context"]["layout_prompt_version"]}
    table = json.loads((folder / ENTITY_FILE).read_text())
    assert table["entity_names"] == list(tiny_setup().kg.entity_names)


def test_round_trip_gives_identical_predictions_and_metrics(saved):
    model, result, folder = saved
    loaded = KGT5MMModel.from_pretrained(folder)
    assert loaded.entity_names == model.entity_names and loaded.dataset == "wn9_img_tiny"
    queries = tiny_setup().kg.queries("test")[:8, :2]
    before = model.predict(queries, top_k=5)
    after = loaded.predict(queries, top_k=5)  # loads wn9_img_tiny by the saved name
    assert [[c["entity"] for c in row] for row in before] == [[c["entity"] for c in row] for row in after]
    np.testing.assert_allclose([[c["score"] for c in r] for r in before],
                               [[c["score"] for c in r] for r in after], atol=1e-5)
    again = loaded.evaluate(split="test", config=EvalConfig(num_beams=5, top_k=5))
    for key, value in result.metrics.items():
        assert again.metrics[key] == pytest.approx(value, abs=1e-9, nan_ok=True), key


def test_predict_accepts_names_and_directions(saved):
    model, _, _ = saved
    kg = tiny_setup().kg
    h, r, t = kg.splits["test"][0]
    by_name = model.predict([(kg.entity_names[h], kg.relation_ids[r])], top_k=3)
    by_id = model.predict(np.array([[h, r]]), top_k=3)
    assert by_name == by_id and len(by_name[0]) == 3
    head = model.predict([(kg.entity_names[t], kg.relation_ids[r], "head")], top_k=3)
    assert head == model.predict(np.array([[t, r + kg.num_relations]]), top_k=3)
    assert {"rank", "entity", "entity_id", "name", "score"} <= set(by_name[0][0])


def test_push_to_hub_uploads_the_saved_folder(saved):
    model, _, _ = saved
    seen = {}

    def upload_folder(*, folder_path, repo_id, commit_message, revision=None):
        from pathlib import Path

        seen["files"] = {p.name for p in Path(folder_path).iterdir()}
        seen["repo"] = repo_id
        return "https://huggingface.co/user/tiny/commit/abc"

    api = mock.MagicMock()
    api.upload_folder.side_effect = upload_folder
    with mock.patch("huggingface_hub.HfApi", return_value=api):
        url = model.push_to_hub("user/tiny", token="x")
    api.create_repo.assert_called_once_with(repo_id="user/tiny", private=False, exist_ok=True)
    assert seen["repo"] == "user/tiny" and "model.safetensors" in seen["files"]
    assert url.endswith("abc")


def test_from_pretrained_downloads_hub_ids(saved, tmp_path):
    _, _, folder = saved
    with mock.patch("huggingface_hub.snapshot_download", return_value=str(folder)) as download:
        loaded = KGT5MMModel.from_pretrained("user/tiny")
    download.assert_called_once()
    assert loaded.entity_names == tiny_setup().kg.entity_names


def test_missing_folder_is_a_clear_error(tmp_path):
    from kgt5mm.errors import KGT5MMError

    with pytest.raises(KGT5MMError, match="not a kgt5mm model folder"):
        KGT5MMModel.from_pretrained(tmp_path)


def test_eval_config_defaults_to_the_saved_settings_and_the_training_source_length(saved):
    model, _, folder = saved
    loaded = KGT5MMModel.from_pretrained(folder)
    assert (loaded.eval_config().num_beams, loaded.eval_config().top_k) == (5, 5)
    assert loaded.eval_config(top_k=7, batch_size=None).top_k == 7  # None keeps the saved value
    queries = tiny_setup().kg.queries("test")[:2, :2]
    assert [len(row) for row in loaded.predict(queries)] == [5, 5]  # saved top_k, not 10
    trained = KGT5MMModel(loaded.model, loaded.tokenizer, entity_names=loaded.entity_names,
                          config={**loaded.config, "train": {"max_source_length": 40}})
    assert trained.eval_config().max_source_length == 40  # sources cut as in training
    assert loaded.eval_config().max_source_length is None


def test_caption_files_travel_with_the_model_folder(tmp_path, monkeypatch):
    import os
    import shutil
    import stat

    from kgt5mm.errors import KGT5MMError

    model = make_model()
    kg = tiny_setup().kg
    captions = tmp_path / "work" / "captions.tsv"
    captions.parent.mkdir()
    captions.write_text(f"{kg.entity_names[0]}\ta photo of a thing\n", encoding="utf-8")
    model.config["context"]["caption_files"] = [str(captions)]
    folder = model.save_pretrained(tmp_path / "model")
    saved = json.loads((folder / CONFIG_FILE).read_text())["config"]["context"]["caption_files"]
    assert saved == ["captions/captions.tsv"] and (folder / saved[0]).is_file()
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(folder.stat().st_mode) == 0o777 & ~umask  # not mkdtemp's private 0700
    # the model moves to another machine: the original file is gone, the cwd is elsewhere
    moved = shutil.move(str(folder), str(tmp_path / "elsewhere"))
    shutil.rmtree(captions.parent)
    monkeypatch.chdir(tmp_path)
    loaded = KGT5MMModel.from_pretrained(moved)
    assert loaded.context_builder(kg).captions.entity(0) == "a photo of a thing"
    # a caption file that is missing when saving is an error, not a broken model folder
    model.config["context"]["caption_files"] = [str(tmp_path / "gone.tsv")]
    with pytest.raises(KGT5MMError, match="gone.tsv"):
        model.save_pretrained(tmp_path / "broken")
    assert not (tmp_path / "broken").exists()

"""The evaluate / predict / hub commands end to end on a saved tiny model."""

from __future__ import annotations

import json

import numpy as np
import pyarrow.parquet as pq
import pytest
from test_eval_helpers import one_thread, tiny_setup

from kgt5mm.cli import main
from kgt5mm.errors import DataFormatError


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    with one_thread():
        yield


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    from kgt5mm.hub import KGT5MMModel

    s = tiny_setup()
    config = {"data": {"dataset": "wn9_img_tiny"}, "context": s.context_config.resolved().to_dict()}
    return KGT5MMModel.from_training(s.model, s.tokenizer, s.kg, config) \
        .save_pretrained(tmp_path_factory.mktemp("cli") / "model")


def test_evaluate_command_writes_metrics_table_and_plot(model_dir, tmp_path, capsys):
    out = tmp_path / "eval"
    assert main(["evaluate", str(model_dir), "--split", "test", "--top-k", "5",
                 "--device", "cpu", "--output-dir", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "both.realistic.mrr" in printed
    metrics = json.loads((out / "metrics.json").read_text())["metrics"]
    assert metrics["num_queries"] == 2 * len(tiny_setup().kg.splits["test"])
    assert (out / "per_relation.tsv").exists() and (out / "per_relation_mrr.png").exists()


def test_context_breakdown_splits_the_ranks_by_answer_in_context(model_dir, tmp_path, capsys):
    from kgt5mm.evaluation import answer_in_context
    from kgt5mm.hub import KGT5MMModel

    out = tmp_path / "eval"
    assert main(["evaluate", str(model_dir), "--split", "test", "--top-k", "5", "--device", "cpu",
                 "--context-breakdown", "--output-dir", str(out)]) == 0
    printed = capsys.readouterr().out
    saved = json.loads((out / "metrics.json").read_text())
    flags, ranks = saved["answer_in_context"], saved["ranks"]["realistic"]
    # independent check of the flags: the answer's name occurs in the built source string
    model = KGT5MMModel.from_pretrained(model_dir)
    kg = model.load_graph()
    builder = model.context_builder(kg)
    queries = saved["queries"]
    assert flags == answer_in_context(builder, queries).tolist()
    for (e, q, a), flag in zip(queries, flags, strict=True):
        if flag:
            assert kg.entity_names[a] in builder.build(e, q)
    assert 0 < sum(flags) < len(flags)  # both groups occur on the tiny graph
    rows = [line.split("\t") for line in (out / "context_breakdown.tsv").read_text().splitlines()]
    header = rows[0]
    assert header[:5] == ["relation", "name", "side", "answer_in_context", "num_queries"]
    overall = {r[3]: r for r in rows[1:] if r[0] == "-1" and r[2] == "both"}
    for flag in (True, False):
        mine = [1 / r for r, f in zip(ranks, flags, strict=True) if f == flag]
        row = overall[str(flag)]
        assert int(row[4]) == len(mine)
        assert float(row[5]) == pytest.approx(sum(mine) / len(mine), abs=1e-4)
    headline = json.loads(printed[: printed.index("\nwrote ")])
    assert headline["answer_in_context_share"] == pytest.approx(sum(flags) / len(flags))
    assert headline["answer_in_context.both.realistic.mrr"] == pytest.approx(float(overall["True"][5]), abs=1e-4)
    per_relation_total = sum(int(r[4]) for r in rows[1:] if r[0] != "-1" and r[2] == "both")
    assert per_relation_total == len(flags)


def test_predict_split_to_jsonl_and_parquet(model_dir, tmp_path):
    kg = tiny_setup().kg
    jsonl = tmp_path / "p.jsonl"
    assert main(["predict", str(model_dir), "--split", "test", "--top-k", "3", "--device", "cpu",
                 "--output", str(jsonl)]) == 0
    rows = [json.loads(line) for line in jsonl.read_text().splitlines()]
    assert len(rows) == 2 * len(kg.splits["test"])
    assert rows[0]["direction"] == "tail" and rows[-1]["direction"] == "head"
    assert all(len(r["candidates"]) == 3 for r in rows)
    assert all(c["name"] == kg.entity_names[c["entity"]] for r in rows for c in r["candidates"])
    parquet = tmp_path / "p.parquet"
    assert main(["predict", str(model_dir), "--split", "test", "--top-k", "3", "--device", "cpu",
                 "--output", str(parquet)]) == 0
    table = pq.read_table(parquet).to_pylist()
    assert [r["candidates"] for r in table] == [r["candidates"] for r in rows]


def test_predict_query_file_by_names_and_ids(model_dir, tmp_path):
    kg = tiny_setup().kg
    h, r, t = (int(x) for x in kg.splits["test"][0])
    queries = tmp_path / "q.tsv"
    queries.write_text(f"# comment\n{kg.entity_names[h]}\t{kg.relation_ids[r]}\n"
                       f"{h}\t{r}\n{kg.entity_names[t]}\t{kg.relation_ids[r]}\thead\n\n")
    out = tmp_path / "q.jsonl"
    assert main(["predict", str(model_dir), "--queries", str(queries), "--top-k", "2",
                 "--device", "cpu", "--output", str(out)]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 3
    assert rows[0]["candidates"] == rows[1]["candidates"]
    assert rows[2]["query_relation"] == r + kg.num_relations and rows[2]["answer"] is None


def _write(path, text):
    path.write_text(text)
    return path


def test_bad_query_line_names_file_and_line(model_dir, tmp_path):
    from kgt5mm.commands.predict import read_query_file

    bad = tmp_path / "bad.tsv"
    bad.write_text("soul\t_hypernym\nno such entity\t_hypernym\n")
    with pytest.raises(DataFormatError, match=r"bad.tsv:2"):
        read_query_file(bad, tiny_setup().kg)
    digits = tmp_path / "digits.tsv"  # passes str.isdigit(), which int() refuses
    digits.write_text("soul\t_hypernym\n\u00b2\t_hypernym\n")
    with pytest.raises(DataFormatError, match=r"digits.tsv:2: .*unknown entity"):
        read_query_file(digits, tiny_setup().kg)
    rows = read_query_file(_write(tmp_path / "index.tsv", "3\t0\n"), tiny_setup().kg)
    assert rows[0, :2].tolist() == [3, 0]
    latin1 = tmp_path / "latin1.tsv"
    latin1.write_bytes("soul\t_hypernym\ncaf\xe9\t_hypernym\n".encode("latin-1"))
    with pytest.raises(DataFormatError, match=r"latin1.tsv:2: not UTF-8"):
        read_query_file(latin1, tiny_setup().kg)
    from kgt5mm.errors import KGT5MMError

    with pytest.raises(KGT5MMError, match="missing.tsv.*not found"):
        read_query_file(tmp_path / "missing.tsv", tiny_setup().kg)
    both = tmp_path / "both.tsv"
    both.write_text("soul\t_hypernym\tinverse\n")  # the same direction --inverse asks for
    rows = read_query_file(both, tiny_setup().kg, inverse=True)
    assert rows[0, 1] >= tiny_setup().kg.num_relations


def test_evaluate_defaults_to_the_settings_saved_with_the_model(tmp_path, capsys):
    from kgt5mm.evaluation import EvalConfig
    from kgt5mm.hub import KGT5MMModel

    s = tiny_setup()
    config = {"data": {"dataset": "wn9_img_tiny"}, "context": s.context_config.resolved().to_dict(),
              "eval": EvalConfig(num_beams=3, top_k=3, max_queries=6).to_dict()}
    folder = KGT5MMModel.from_training(s.model, s.tokenizer, s.kg, config).save_pretrained(tmp_path / "m")
    assert main(["evaluate", str(folder), "--output-dir", str(tmp_path / "a")]) == 0
    saved = json.loads((tmp_path / "a" / "metrics.json").read_text())
    assert saved["eval_config"]["top_k"] == 3 and saved["metrics"]["num_queries"] == 6
    assert main(["evaluate", str(folder), "--top-k", "4", "--all-queries",
                 "--output-dir", str(tmp_path / "b")]) == 0
    given = json.loads((tmp_path / "b" / "metrics.json").read_text())
    assert (given["eval_config"]["num_beams"], given["eval_config"]["top_k"]) == (4, 4)
    assert given["metrics"]["num_queries"] == len(s.kg.queries("test"))


def test_candidate_views_flag_reaches_evaluate_and_predict(model_dir, tmp_path):
    """--candidate-views gives the library's view scoring in both commands."""
    from kgt5mm.evaluation import EvalConfig, evaluate

    s = tiny_setup()
    E = s.kg.num_entities

    def library(views, k):
        return evaluate(s.model, s.tokenizer, s.kg, s.builder, split="test",
                        config=EvalConfig(num_beams=k, top_k=k, candidate_views=views))

    wide, wide_plain = library(3, E), library(0, E)
    assert not np.array_equal(wide.predictions.scores, wide_plain.predictions.scores)
    assert main(["evaluate", str(model_dir), "--split", "test", "--top-k", str(E), "--device", "cpu",
                 "--candidate-views", "3", "--output-dir", str(tmp_path / "v")]) == 0
    saved = json.loads((tmp_path / "v" / "metrics.json").read_text())
    assert saved["ranks"]["realistic"] == pytest.approx(wide.ranks.realistic.tolist())
    assert saved["eval_config"]["candidate_views"] == 3
    narrow, narrow_plain = library(3, 5), library(0, 5)
    assert not np.array_equal(narrow.predictions.scores, narrow_plain.predictions.scores)
    out = tmp_path / "p.jsonl"
    assert main(["predict", str(model_dir), "--split", "test", "--top-k", "5", "--device", "cpu",
                 "--candidate-views", "3", "--output", str(out)]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    scores = [[c["score"] for c in r["candidates"]] for r in rows]
    assert scores == [pytest.approx([x for x in row[:5] if x > -np.inf], abs=1e-5)
                      for row in narrow.predictions.scores.tolist()]  # top-k of the wider lists

"""End-to-end tests of ``kgt5mm caption`` with a tiny random BLIP-2 on the 11 real WN9 photos.

The VLM is built from configs (``kgt5mm.vision.tiny``), never downloaded. One corrupt and one
missing image are added through ``--images`` to check that they are recorded and counted.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from kgt5mm.cli import main
from kgt5mm.context import CaptionStore, read_cache
from kgt5mm.data import load_graph

ALL_KINDS = ["relevance", "description", "link", "summary"]
ARGS = ["--threshold", "0", "--links-per-entity", "1", "--max-new-tokens", "2", "--batch-size", "4"]


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """A 67k-parameter model gains nothing from threads; on a busy 2-core box they cost 5-10x."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def tiny_vlm(tmp_path_factory) -> Path:
    from kgt5mm.vision.tiny import save_tiny_vlm

    return save_tiny_vlm(tmp_path_factory.mktemp("vlm") / "tiny-blip2")


@pytest.fixture(scope="module")
def kg():
    return load_graph("wn9_img_tiny")


@pytest.fixture(scope="module")
def image_list(kg, tmp_path_factory) -> Path:
    """The 11 real photos; a 12th line gives a neighbour of a photographed entity a photo too
    (so one pair has images on both sides); one corrupt and one missing image."""
    folder = tmp_path_factory.mktemp("images")
    lines = [f"{kg.entity_ids[e]}\t{p}" for e, paths in enumerate(kg.entity_images) for p in paths]
    assert len(lines) == 11
    first = next(e for e, paths in enumerate(kg.entity_images) if paths)
    partner = next(n for n in kg.neighbours.of(first)[1].tolist() if not kg.entity_images[n])
    lines.append(f"{kg.entity_ids[partner]}\t{kg.entity_images[first][0]}")
    without = [e for e, paths in enumerate(kg.entity_images) if not paths and e != partner]
    (folder / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n this is not really a png")
    lines.append(f"{kg.entity_ids[without[0]]}\tcorrupt.png")
    lines.append(f"{kg.entity_names[without[1]]}\tdoes_not_exist.jpg")
    path = folder / "images.tsv"
    path.write_text("\n".join(lines) + "\n")
    return path


def _caption(cache: Path, tiny_vlm: Path, image_list: Path, *extra: str) -> int:
    kinds = [] if "--kinds" in extra else ["--kinds", *ALL_KINDS]
    return main(["caption", "wn9_img_tiny", "--model", str(tiny_vlm), "--cache", str(cache),
                 "--images", str(image_list), *ARGS, *kinds, *extra])


def _lines(cache: Path) -> list[dict]:
    return [json.loads(line) for line in cache.read_text().splitlines()]


def _key(record: dict) -> tuple:
    return (record["kind"], tuple(record["entities"]), tuple(record["images"]), record["model"],
            record["prompt_id"], record["prompt_version"])


@pytest.fixture(scope="module")
def complete_run(tiny_vlm, image_list, tmp_path_factory):
    cache = tmp_path_factory.mktemp("run") / "captions.jsonl"
    assert _caption(cache, tiny_vlm, image_list) == 0
    return cache


def test_end_to_end_all_three_kinds(complete_run, kg, capsys):
    records = _lines(complete_run)
    kinds = Counter(r["kind"] for r in records if r["status"] == "ok")
    assert kinds["relevance"] == 12 and kinds["description"] == 12 and kinds["link"] >= 11
    assert kinds["summary"] >= 1
    prompts = Counter(r["prompt_id"] for r in records if r["kind"] == "link")
    assert prompts["link_caption"] >= 1 and prompts["link_caption_one_image"] >= 1
    for r in records:
        assert r["model"] and r["prompt_id"] and r["prompt_version"] >= 1
        if r["kind"] == "relevance" and r["status"] == "ok":
            assert 0.0 <= r["p_yes"] <= 1.0 and r["kept"] is True
        if r["kind"] == "link":
            assert len(r["entities"]) == 2 and r["relation"]
            assert r["prompt_id"] in ("link_caption", "link_caption_one_image")
            assert len(r["images"]) == (2 if r["prompt_id"] == "link_caption" else 1)
    errors = {r["error"].split(":")[0] for r in records if r["status"] == "error"}
    assert errors == {"missing image", "unreadable image"}
    assert len({_key(r) for r in records}) == len(records)  # no duplicates
    store = CaptionStore.from_cache(complete_run, kg)
    assert len(store.link_text) == kinds["link"]  # summaries only fill pairs without a link caption


def test_errors_are_reported_and_counted(tiny_vlm, image_list, tmp_path, capsys):
    cache = tmp_path / "c.jsonl"
    assert _caption(cache, tiny_vlm, image_list, "--kinds", "relevance") == 0
    out = capsys.readouterr().out
    assert "relevance/missing image: 1" in out and "relevance/unreadable image: 1" in out
    assert "relevance: 14 items, 0 already cached, 12 done" in out


def test_rerun_skips_everything(complete_run, tiny_vlm, image_list, capsys):
    before = complete_run.read_bytes()
    capsys.readouterr()
    assert _caption(complete_run, tiny_vlm, image_list) == 0
    out = capsys.readouterr().out
    assert complete_run.read_bytes() == before
    assert "\n0 images through the VLM" in out
    assert "relevance: 14 items, 14 already cached, 0 done" in out
    assert "description: 12 items, 12 already cached, 0 done" in out


def test_crash_midway_then_resume(complete_run, tiny_vlm, image_list, kg, tmp_path, capsys):
    """An exception after 3 batches plus a torn last line, then a rerun: all items, once each."""
    from kgt5mm.vision.captioner import CaptionConfig, run_captioning
    from kgt5mm.vision.tiny import save_tiny_vlm  # noqa: F401  (same model folder as the CLI)

    cache = tmp_path / "c.jsonl"
    kg_images = load_graph("wn9_img_tiny")
    from kgt5mm.commands.caption import read_image_list

    kg_images.entity_images = read_image_list(image_list, kg_images)

    class Crash(RuntimeError):
        pass

    def crash(batches: int) -> None:
        if batches == 3:
            raise Crash

    config = CaptionConfig(model=str(tiny_vlm), cache=str(cache), threshold=0.0, links_per_entity=1,
                           max_new_tokens=2, batch_size=4, kinds=tuple(ALL_KINDS))
    with pytest.raises(Crash):
        run_captioning(kg_images, config, on_batch=crash)
    partial = _lines(cache)
    assert 0 < len(partial) < len(_lines(complete_run))
    with open(cache, "ab") as handle:  # a write torn by a kill: no newline, invalid JSON
        handle.write(b'{"kind": "description", "entities": ["n0')
    assert read_cache(cache).truncated_last_line
    capsys.readouterr()
    assert _caption(cache, tiny_vlm, image_list) == 0
    assert "1 truncated last line(s) cut" in capsys.readouterr().out
    resumed = _lines(cache)
    keys = [_key(r) for r in resumed]
    assert len(keys) == len(set(keys))
    assert set(keys) == {_key(r) for r in _lines(complete_run)}


@pytest.mark.slow
def test_sigkill_midway_then_resume(complete_run, tiny_vlm, image_list, tmp_path):
    """A real SIGKILL of a captioning process, then a rerun: no duplicate, no missing item."""
    cache = tmp_path / "c.jsonl"
    cmd = [sys.executable, "-m", "kgt5mm.cli", "caption", "wn9_img_tiny", "--model", str(tiny_vlm),
           "--cache", str(cache), "--images", str(image_list), *ARGS, "--kinds", *ALL_KINDS,
           "--batch-size", "1"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        if cache.exists() and cache.read_bytes().count(b"\n") >= 15:
            os.kill(proc.pid, signal.SIGKILL)
            break
        time.sleep(0.01)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    assert subprocess.run(cmd, capture_output=True, env=env).returncode == 0
    keys = [_key(r) for r in _lines(cache)]
    assert len(keys) == len(set(keys))
    assert set(keys) == {_key(r) for r in _lines(complete_run)}


class _ThreadState:
    """Stand-in for accelerate's PartialState: ranks are threads, barriers a threading.Barrier."""

    def __init__(self, rank: int, world: int, barrier):
        import torch

        self.process_index, self.num_processes = rank, world
        self.is_main_process = rank == 0
        self.device = torch.device("cpu")
        self._barrier = barrier

    def wait_for_everyone(self) -> None:
        self._barrier.wait(timeout=120)


def test_two_process_shards_merge_without_duplicates(complete_run, tiny_vlm, image_list, tmp_path):
    """The sharding protocol with 2 ranks (threads + a real barrier): disjoint work, one cache."""
    import threading

    from kgt5mm.commands.caption import read_image_list
    from kgt5mm.vision.captioner import CaptionConfig, run_captioning
    from kgt5mm.vision.vlm import VLM

    kg_images = load_graph("wn9_img_tiny")
    kg_images.entity_images = read_image_list(image_list, kg_images)
    cache = tmp_path / "c.jsonl"
    config = CaptionConfig(model=str(tiny_vlm), cache=str(cache), threshold=0.0, links_per_entity=1,
                           max_new_tokens=2, batch_size=4, kinds=tuple(ALL_KINDS))
    vlms = [VLM(str(tiny_vlm)) for _ in range(2)]  # one each: a fast tokenizer is not thread-safe
    barrier = threading.Barrier(2)
    summaries, failures = {}, []

    def rank(r: int) -> None:
        try:
            summaries[r] = run_captioning(kg_images, config, vlm=vlms[r],
                                          state=_ThreadState(r, 2, barrier))
        except BaseException as error:  # surfaced below
            failures.append(error)
            barrier.abort()

    threads = [threading.Thread(target=rank, args=(r,)) for r in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not failures, failures
    keys = [_key(r) for r in _lines(cache)]
    assert len(keys) == len(set(keys))
    assert set(keys) == {_key(r) for r in _lines(complete_run)}
    assert not list(tmp_path.glob("c.jsonl.part-*"))
    for kind in ("relevance", "description", "link"):  # (1 summary item: one rank only)
        assert summaries[0].done[kind] > 0 and summaries[1].done[kind] > 0
        assert summaries[0].done[kind] + summaries[1].done[kind] + sum(
            s.errors[f"{kind}/missing image"] + s.errors[f"{kind}/unreadable image"]
            for s in summaries.values()) == summaries[0].planned[kind]


@pytest.mark.parametrize("kind", ["instructblip", "llava"])
def test_other_architectures(kind, tmp_path, capsys):
    """InstructBLIP (T5 encoder-decoder) and LLaVA (chat template, CLIP + Llama) work too:
    batched Yes/No probabilities equal unbatched ones; the CLI produces texts."""
    from kgt5mm.vision.images import load_image
    from kgt5mm.vision.tiny import save_tiny_vlm
    from kgt5mm.vision.vlm import VLM

    folder = save_tiny_vlm(tmp_path / kind, kind=kind)
    vlm = VLM(str(folder))
    assert vlm.decoder_only == (kind == "llava")
    assert vlm.use_chat_template == (kind == "llava")
    kg = load_graph("wn9_img_tiny")
    images = [load_image(p) for paths in kg.entity_images for p in paths][:3]
    prompts = ["Question: Is this a cat? Answer:", "Is it?", "Question: Is this a big dog? Answer:"]
    probs = vlm.yes_probability(images, prompts)
    assert len(probs) == 3 and all(0.0 <= p <= 1.0 for p in probs)
    assert vlm.yes_probability(images[:1], prompts[:1])[0] == pytest.approx(probs[0], abs=1e-5)
    texts = vlm.generate(images, ["a", "b", "c"], max_new_tokens=2)
    assert len(texts) == 3 and all(isinstance(t, str) for t in texts)
    cache = tmp_path / "c.jsonl"
    assert main(["caption", "wn9_img_tiny", "--model", str(folder), "--cache", str(cache), *ARGS,
                 "--kinds", "relevance", "description"]) == 0
    kinds = Counter(r["kind"] for r in _lines(cache) if r["status"] == "ok")
    assert kinds == {"relevance": 11, "description": 11}


@pytest.mark.slow
def test_torchrun_two_processes(complete_run, tiny_vlm, image_list, tmp_path):
    """A real 2-process run (torchrun, gloo on the CPU): same items as one process, no duplicate."""
    cache = tmp_path / "c.jsonl"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "kgt5mm.cli",
           "caption", "wn9_img_tiny", "--model", str(tiny_vlm), "--cache", str(cache), "--images",
           str(image_list), *ARGS, "--kinds", *ALL_KINDS]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "relevance: 14 items, 0 already cached, 12 done" in out.stdout
    keys = [_key(r) for r in _lines(cache)]
    assert len(keys) == len(set(keys))
    assert set(keys) == {_key(r) for r in _lines(complete_run)}
    assert not list(tmp_path.glob("c.jsonl.part-*"))


def test_two_images_of_one_entity_with_the_same_file_name_are_refused():
    # cache records name an image by its file name: the second would silently reuse the first's
    from kgt5mm.context.prompts import load_prompt
    from kgt5mm.data import KnowledgeGraph
    from kgt5mm.errors import ConfigError
    from kgt5mm.vision.captioner import CaptionConfig, plan_relevance

    prompt = load_prompt(CaptionConfig(model="m", cache="c.jsonl").prompts["relevance"])
    ok = KnowledgeGraph.from_triples(train=[("a", "r", "b")], images={"a": ["x/1.jpg", "x/2.jpg"]})
    assert len(plan_relevance(ok, model="m", prompt=prompt)) == 2
    clash = KnowledgeGraph.from_triples(train=[("a", "r", "b")], images={"a": ["x/1.jpg", "y/1.jpg"]})
    with pytest.raises(ConfigError, match=r"entity 'a' \(a\) has two images named '1.jpg': x/1.jpg and y/1.jpg"):
        plan_relevance(clash, model="m", prompt=prompt)

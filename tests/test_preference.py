"""The human preference study (pipeline/preference): what the server refuses, answers that survive
a killed server, concurrent raters, the export's intervals and the crowdsourcing round trip."""

from __future__ import annotations

import csv
import hashlib
import http.client
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import sqlalchemy as sa
import pytest

from pipeline.core.errors import InputError
from pipeline.core.images import write_rgb
from pipeline.preference import crowd, scores
from pipeline.preference.server import Disguise, RaterLimit, background_server, create_app, rater_questions
from pipeline.preference import store as tables
from pipeline.preference.store import Store
from pipeline.preference.study import Question, Study, other_side, prepare
from tests.conftest import REPO, free_port, make_dataset, synth_cfg


def make_study(folder, pairs: int = 3, methods=("frame_by_frame", "covst"), questions_per_rater: int = 0,
               checks: bool = True) -> Study:
    """A study of ``pairs`` sequences x ``methods`` (vid2vid against each) and one attention check
    (unless not ``checks``), with real 8-frame mp4 videos."""
    from model.synthesis import Mp4Writer

    (folder / "videos").mkdir(parents=True)
    rng = np.random.default_rng(0)
    videos, questions = {}, []

    def video(name: str) -> str:
        vid = f"{len(videos):016x}"
        with Mp4Writer(folder / "videos" / f"{vid}.mp4", 8) as writer:
            for _ in range(8):
                writer.write(rng.integers(0, 255, (32, 48, 3), dtype=np.uint8))
        videos[vid] = f"{vid}.mp4"
        return vid

    for s in range(pairs):
        ours = video(f"vid2vid{s}")
        for m in methods:
            questions.append(Question(f"q{len(questions):04d}", "table1", "short", f"seq{s}", "vid2vid", m, ours, video(f"{m}{s}")))
    if checks:
        questions.append(Question("check0", "attention", "short", "seq0", "real", "broken", video("real"),
                                  video("broken")))
    (folder / "study.json").write_text(json.dumps({
        "dataset": "demo", "question": "Which video looks real?", "fingerprint": f"test-{pairs}",
        "questions_per_rater": questions_per_rater, "questions": [q.row() for q in questions], "videos": videos}))
    return Study.load(folder)


@pytest.fixture(scope="module")
def prepared(tmp_path_factory, short_clip, ffmpeg) -> Study:
    """A study made by ``prepare`` from a real street clip (bikes.mp4, 160x68) cut into four
    12-frame sequences, as five runs render them: vid2vid against frame_by_frame and covst
    (table1) and against two ablations (table2), on 6-frame clips and whole sequences, and an
    attention check per sequence and length: 32 pairs and 8 checks, 56 videos, as in the demo."""
    from scipy.ndimage import uniform_filter

    tmp = tmp_path_factory.mktemp("prepared")
    frames = np.frombuffer(decoded(short_clip.read_bytes(), tmp, ffmpeg), np.uint8).reshape(-1, 68, 160, 3)
    rng = np.random.default_rng(0)

    def noisy(clip, std, flicker):
        noise = rng.normal(0, std, clip.shape) + rng.normal(0, flicker, (len(clip), 1, 1, 1))
        return np.clip(clip + noise, 0, 255).astype(np.uint8)

    renderings = {"vid2vid": lambda f: uniform_filter(f, (1, 3, 3, 1)), "covst": lambda f: uniform_filter(f, (1, 7, 7, 1)),
                  "frame_by_frame": lambda f: noisy(f, 6, 12), "no_fg": lambda f: noisy(uniform_filter(f, (1, 5, 5, 1)), 2, 0),
                  "no_flow": lambda f: noisy(f, 0, 20)}
    sequences = {f"seq{i}": frames[12 * i:12 * (i + 1)] for i in range(4)}
    files = {}
    for sequence, real in sequences.items():
        for method, render in renderings.items():
            (tmp / sequence / method).mkdir(parents=True)
            files[sequence, method] = [tmp / sequence / method / f"{i:04d}.png" for i in range(len(real))]
            for path, frame in zip(files[sequence, method], render(real)):
                write_rgb(path, frame)
    ds = make_dataset(tmp, "demo", adapter="cityscapes", generate={"synthcity": synth_cfg()},
                      evaluate={"methods": ["frame_by_frame", "covst", "vid2vid"], "ablations": ["vid2vid", "no_fg", "no_flow"]},
                      preference={"studies": ["table1", "table2"], "lengths": {"short": 6, "long": 0},
                                  "attention_checks": 4})

    def sequence_frames(_ds, methods, sequence):
        return None, sequences[sequence], {m: files[sequence, m] for m in methods}

    with pytest.MonkeyPatch.context() as patch:  # the synthesized frames, as if read from results/
        patch.setattr("pipeline.core.synthesized.sequence_frames", sequence_frames)
        return prepare(ds, list(sequences), tmp / "study")


@pytest.fixture
def study(tmp_path):
    return make_study(tmp_path / "study")


@pytest.fixture
def store(tmp_path, study):
    store = Store.open(tmp_path / "answers.sqlite", study)
    yield store
    store.close()


def rater(client) -> dict:
    token = client.post("/api/raters").get_json()["token"]
    return {"Authorization": f"Bearer {token}"}


def answer_count(store) -> int:
    return len(store.rows())


def shown_files(study, store, auth) -> tuple[Path, Path]:
    """The files of the question a rater was shown last: (on the left, on the right)."""
    rater = store.rater_of(auth["Authorization"].removeprefix("Bearer "))
    with store.engine.connect() as db:
        row = db.execute(sa.select(tables.shown).where(tables.shown.c.rater_id == rater)
                         .order_by(tables.shown.c.shown_at.desc())).first()
    question = study.by_id()[row.question_id]
    videos = {"a": question.video_a, "b": question.video_b}
    return study.video_path(videos[row.left]), study.video_path(videos[other_side(row.left)])


def assert_served_as(body: bytes, path: Path) -> None:
    """``body`` is the file at ``path`` followed by one MP4 'free' box of zeros that pads it."""
    data = path.read_bytes()
    padding = len(body) - len(data)
    assert padding >= 8 and body[:len(data)] == data
    assert body[len(data):len(data) + 8] == struct.pack(">I4s", padding, b"free") and not any(body[len(data) + 8:])


def decoded(video: bytes, folder: Path, ffmpeg: str) -> bytes:
    """The RGB frames ffmpeg decodes from an mp4's bytes, asserting it reports no error."""
    path = folder / f"{hashlib.sha256(video).hexdigest()}.mp4"
    path.write_bytes(video)
    result = subprocess.run([ffmpeg, "-v", "error", "-i", str(path), "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
                            capture_output=True, check=True)
    assert not result.stderr, result.stderr
    return result.stdout


def test_only_the_studys_own_videos_can_be_fetched(study, store, tmp_path):
    (tmp_path / "secret.mp4").write_bytes(b"not for raters")
    client = create_app(study, store).test_client()
    question = study.questions[0]
    disguise = Disguise(store.secret())
    vid = disguise.video(question.id, "a")
    lettered = next(disguise.video(q.id, side) for q in study.questions for side in "ab"
                    if any(c.isalpha() for c in disguise.video(q.id, side)))
    ok = client.get(f"/videos/{vid}.mp4")
    assert_served_as(ok.data, study.folder / "videos" / f"{question.video_a}.mp4")
    assert ok.status_code == 200 and ok.mimetype == "video/mp4" and ok.data[4:8] == b"ftyp"
    assert client.get(f"/videos/{vid}.mp4", headers={"Range": "bytes=0-99"}).status_code == 206  # seeking
    for path in ["/videos/../secret.mp4", "/videos/..%2Fsecret.mp4", "/videos/%2e%2e%2f%2e%2e%2fstudy.json",
                 "/videos/..%2F..%2Fanswers.sqlite", "/videos/secret.mp4", "/videos/ffffffffffffffff.mp4",
                 f"/videos/{lettered.upper()}.mp4", f"/videos/{vid}.mp4%0A", f"/videos/{question.video_a}.mp4",
                 "/study.json", "/videos/", "/static/../study.json"]:
        response = client.get(path)
        assert response.status_code == 404, path
        assert b"not for raters" not in response.data


def test_a_study_under_a_relative_results_path_serves_its_videos(tmp_path, monkeypatch):
    # `serve --dataset demo` with the config's `results: results`: the study's folder is relative
    # to the current directory, not to the package Flask serves from
    monkeypatch.chdir(tmp_path)
    folder = Path("results/demo/preference/study")
    study = make_study(folder)
    store = Store.open(folder.parent / "answers.sqlite", study)
    client = create_app(study, store).test_client()
    auth = rater(client)
    shown = client.get("/api/next", headers=auth).get_json()
    for url, path in zip((shown["left"], shown["right"]), shown_files(study, store, auth)):
        response = client.get(url)
        assert response.status_code == 200, response.data[:200]
        assert_served_as(response.data, tmp_path / folder / "videos" / path.name)
    store.close()


def test_no_video_response_names_its_file(tmp_path, study, store, ffmpeg):
    # ours' video is in every question of its sequence: neither a header nor the size may tell
    # that two questions show the same file (Content-Disposition, an ETag or Last-Modified from the
    # file did, and so did the file's own size), to one rater or to several comparing theirs
    client = create_app(study, store).test_client()
    disguise = Disguise(store.secret())
    files = {f"/videos/{disguise.video(q.id, side)}.mp4": study.video_path(video) for q in study.questions
             for side, video in (("a", q.video_a), ("b", q.video_b))}
    responses = {url: client.get(url) for url in files}
    assert len(set(files.values())) < len(files)  # ours' file is served under several URLs
    headers = [dict(response.headers) for response in responses.values()]
    assert {response.status_code for response in responses.values()} == {200}
    assert "Content-Disposition" not in headers[0] and "Last-Modified" not in headers[0]
    assert {frozenset(h) for h in headers} == {frozenset(headers[0])}  # the same headers for every video
    assert {name for name in headers[0] if len({h[name] for h in headers}) > 1} <= {"ETag", "Date"}
    assert len({h["ETag"] for h in headers}) == len(responses)  # a validator per question and side
    for url, response in responses.items():
        assert_served_as(response.data, files[url])
    url, response = next(iter(responses.items()))  # seeking and revalidating by the URL's validator
    part = client.get(url, headers={"Range": "bytes=0-99", "If-Range": response.headers["ETag"]})
    assert part.status_code == 206 and part.data == response.data[:100]
    assert client.get(url, headers={"If-None-Match": response.headers["ETag"]}).status_code == 304
    frames = decoded(response.data, tmp_path, ffmpeg)  # padded, it plays as the file does
    assert frames == decoded(files[url].read_bytes(), tmp_path, ffmpeg) and len(frames) == 8 * 32 * 48 * 3


def test_attention_videos_are_the_size_of_the_others_and_still_broken(prepared, tmp_path, ffmpeg):
    # the broken video's noise made it twice the others' size or more: a size told it apart
    assert len([q for q in prepared.questions if q.attention]) == 8 and len(prepared.videos) == 56
    for length in ("short", "long"):
        questions = [q for q in prepared.questions if q.length == length]
        broken = {q.video_b for q in questions if q.attention}
        others = {v for q in questions for v in (q.video_a, q.video_b)} - broken
        sizes = [prepared.video_path(v).stat().st_size for v in others]
        for video in broken:
            assert min(sizes) <= prepared.video_path(video).stat().st_size <= max(sizes), (length, sizes)
    for check in (q for q in prepared.questions if q.attention):  # and it still looks broken
        real, broken = (np.frombuffer(decoded(prepared.video_path(v).read_bytes(), tmp_path, ffmpeg), np.uint8)
                        .reshape(-1, 68, 160, 3).astype(float) for v in (check.video_a, check.video_b))
        assert len(real) == len(broken) == {"short": 6, "long": 12}[check.length]
        assert np.abs(np.diff(broken, axis=0)).mean() > 3 * np.abs(np.diff(real, axis=0)).mean()
        assert np.abs(broken - real).mean() > 20


SIDES = ("left", "right")


def rater_view(client) -> tuple[str, list[dict]]:
    """Everything one new rater is sent while it answers all its questions (the left video, say):
    its token, and per question the /api/next JSON and both videos' URL, headers and body."""
    auth = rater(client)
    views = []
    while (shown := client.get("/api/next", headers=auth).get_json())["question"]:
        views.append({"question": shown["question"], **{side: {"url": shown[side], "headers": dict(response.headers),
                                                                 "body": response.data}
                                                          for side in SIDES for response in [client.get(shown[side])]}})
        assert client.post("/api/answers", json={"question": shown["question"], "choice": "left"},
                           headers=auth).status_code == 201
    return auth["Authorization"].removeprefix("Bearer "), views


def without_free_box(body: bytes) -> bytes:
    """An mp4's bytes without a trailing 'free' box (a rater may know that the server pads)."""
    offset = 0
    while offset + 8 <= len(body):
        size, kind = struct.unpack(">I4s", body[offset:offset + 8])
        if kind == b"free" and offset + size == len(body) or size < 8:
            return body[:offset]
        offset += size
    return body


def recurring(feature):
    """An attack: the side whose ``feature`` is found in another of this rater's questions too
    (ours' file is in every comparison of its sequence and length; the other method's in one)."""
    def pick(view, views):
        elsewhere = {feature(other[side]) for other in views if other is not view for side in SIDES}
        found = [side for side in SIDES if feature(view[side]) is not None and feature(view[side]) in elsewhere]
        return found[0] if len(found) == 1 else None
    return pick


def earliest(view, _views):
    """An attack: the side written first (prepare writes ours before the others, the real video
    before the broken one), by Last-Modified, else by an ETag made from the file's mtime."""
    keys = {side: (view[side]["headers"].get("Last-Modified", ""), view[side]["headers"].get("ETag", "")) for side in SIDES}
    return None if keys["left"] == keys["right"] else min(SIDES, key=keys.get)


def smaller(view, _views):
    """An attack: the smaller file (the broken video's noise made it the larger)."""
    sizes = {side: int(view[side]["headers"]["Content-Length"]) for side in SIDES}
    return None if sizes["left"] == sizes["right"] else min(SIDES, key=sizes.get)


def computed_question_id(view, _views):
    """An attack: the question's id recomputed from the videos' content ids (the sha256 of their
    bytes, padded or not) in either order, for every study and length."""
    from pipeline.preference.study import _digest

    ids = {side: {hashlib.sha256(body).hexdigest()[:16] for body in (view[side]["body"], without_free_box(view[side]["body"]))}
           for side in SIDES}
    for first, second in (SIDES, SIDES[::-1]):
        if any(view["question"].startswith(_digest(study, length, a, b, size=12)) for study in ("table1", "table2", "attention")
               for length in ("short", "long") for a in ids[first] for b in ids[second]):
            return first
    return None


def unpadded(video: dict) -> bytes:
    return without_free_box(video["body"])


ATTACKS = {
    "file name recurs": recurring(lambda video: video["headers"].get("Content-Disposition")),
    "ETag recurs": recurring(lambda video: video["headers"].get("ETag")),
    "size recurs": recurring(lambda video: video["headers"]["Content-Length"]),
    "URL recurs": recurring(lambda video: video["url"]),
    # the bodies themselves: ours' clip of a sequence and length is the same bytes in each of its comparisons
    "body recurs": recurring(lambda video: hashlib.sha256(video["body"]).hexdigest()),
    "body without padding recurs": recurring(lambda video: hashlib.sha256(unpadded(video)).hexdigest()),
    "size without padding recurs": recurring(lambda video: len(unpadded(video))),
    "written first": earliest,
    "smaller file": smaller,
    "question id recomputed": computed_question_id,
}


class FirstFrames:
    """The first frame ffmpeg decodes from each video body (decoded once per body)."""

    def __init__(self, folder: Path, ffmpeg: str) -> None:
        self.folder, self.ffmpeg, self.frames = folder, ffmpeg, {}

    def __call__(self, body: bytes) -> np.ndarray:
        key = hashlib.sha256(body).hexdigest()
        if key not in self.frames:
            path = self.folder / f"{key}.mp4"
            path.write_bytes(body)
            raw = subprocess.run([self.ffmpeg, "-v", "error", "-i", str(path), "-frames:v", "1", "-f", "rawvideo",
                                  "-pix_fmt", "rgb24", "-"], capture_output=True, check=True).stdout
            self.frames[key] = np.frombuffer(raw, np.uint8).astype(float)
        return self.frames[key]


def content_recurs(first_frame: FirstFrames, within: float = 3.0):
    """An attack on what the videos show: the side whose first frame is in another of this
    rater's questions too (mean absolute difference under ``within`` of 255: a short clip is the
    first frames of its long video; in the prepared study a method's two differ by 2.2 at most,
    two sequences by 8.8 at least)."""
    def pick(view, views):
        others = [first_frame(other[side]["body"]) for other in views if other is not view for side in SIDES]
        found = [side for side in SIDES
                 if any(np.abs(first_frame(view[side]["body"]) - other).mean() < within for other in others)]
        return found[0] if len(found) == 1 else None
    return pick


RATERS = 24


def test_scripted_raters_cannot_tell_ours_or_the_real_video_from_what_is_sent(prepared, tmp_path, ffmpeg):
    # the testers' scripted raters told ours and an attention check's real video from what the
    # server sent (file names, validators, dates, sizes, a computable question id): 1.00 / 0.00 in
    # every comparison; then, the names and sizes disguised, from the bodies: ours' clip of a
    # sequence and length recurred (the same bytes) in every comparison a rater got of it. Each
    # rater here has a database (and a secret) of its own, so that the names its questions and
    # videos get are drawn apart from the other raters', and the raters' questions are pooled.
    from scipy.stats import binom

    views, truth, studies = [], [], []  # per question served: (the view, the rater's views), ours' side, its study
    bodies = []  # per rater: whether no video body (padded or not) was sent to it twice
    for index in range(RATERS):
        store = Store.open(tmp_path / f"answers{index}.sqlite", prepared)
        token, mine = rater_view(create_app(prepared, store).test_client())
        rows = [r for r in store.rows() if r["rater_id"] == store.rater_of(token)]  # in the order answered
        store.close()
        length = {view["question"]: row["length"] for view, row in zip(mine, rows)}
        for view, row in zip(mine, rows):
            views.append((view, mine))
            truth.append("left" if row["left"] == "a" else "right")
            studies.append(row["study"])
            left, right = (view[side]["headers"] for side in SIDES)  # the same headers but the ETag (URL id) and Date
            assert left.keys() == right.keys() and "Content-Disposition" not in left and "Last-Modified" not in left
            assert {name for name in left if left[name] != right[name]} <= {"ETag", "Date"}
            assert left["ETag"] == f'"{view["left"]["url"][8:-4]}"' and right["ETag"] == f'"{view["right"]["url"][8:-4]}"'
        sizes = {}  # one size for every video of a length
        for view in mine:
            sizes.setdefault(length[view["question"]], set()).update(view[side]["headers"]["Content-Length"] for side in SIDES)
        assert all(len(one) == 1 for one in sizes.values()), sizes
        bodies.append(len({without_free_box(view[side]["body"]) for view in mine for side in SIDES}) == 2 * len(mine))

    # and what the videos show, in the comparisons (an attention check's broken video shows what it is)
    attacks = {**{attack: (pick, range(len(views))) for attack, pick in ATTACKS.items()},
               "first frame recurs": (content_recurs(FirstFrames(tmp_path, ffmpeg)),
                                      [i for i, study in enumerate(studies) if study != "attention"])}
    scored = {}
    for attack, (pick, questions) in attacks.items():  # the side it takes for ours, else the URL sorting first
        picked = [pick(*views[i]) or min(SIDES, key=lambda side: views[i][0][side]["url"]) for i in questions]
        scored[attack] = (sum(side == truth[i] for side, i in zip(picked, questions)), len(questions))
    # the chance of doing as well as this by guessing each question
    better_than_chance = {attack: f"{correct} of {total}" for attack, (correct, total) in scored.items()
                          if binom.sf(correct - 1, total, 0.5) <= 1e-4}
    assert not better_than_chance, f"right in (of {RATERS} raters' questions): {scored}"
    assert not [view for view, mine in views if computed_question_id(view, mine)]
    assert all(bodies)


def test_new_raters_are_limited_per_client_address(study, store):
    by_default = create_app(study, store).test_client()  # 30 a minute
    assert [by_default.post("/api/raters").status_code for _ in range(31)] == [201] * 30 + [429]
    client = create_app(study, store, raters_per_minute=3).test_client()
    made = [client.post("/api/raters", environ_base={"REMOTE_ADDR": "192.0.2.1"}) for _ in range(4)]
    assert [response.status_code for response in made] == [201, 201, 201, 429]
    refused = made[-1]
    assert refused.mimetype == "application/json" and "too many new raters" in refused.get_json()["error"]
    assert 0 < int(refused.headers["Retry-After"]) <= 60
    assert client.post("/api/raters", environ_base={"REMOTE_ADDR": "192.0.2.2"}).status_code == 201  # another client
    with store.engine.connect() as db:
        assert db.execute(sa.select(sa.func.count()).select_from(tables.raters)).scalar() == 30 + 4
    unlimited = create_app(study, store, raters_per_minute=0).test_client()
    assert {unlimited.post("/api/raters").status_code for _ in range(40)} == {201}
    clock = [0.0]  # a minute after its first rater, a client may make another
    limit = RaterLimit(2, clock=lambda: clock[0])
    assert [limit.wait("192.0.2.1") for _ in range(3)] == [0, 0, 60]
    clock[0] = 45.0
    assert limit.wait("192.0.2.1") == 15 and limit.wait("192.0.2.2") == 0
    clock[0] = 60.0
    assert [limit.wait("192.0.2.1") for _ in range(3)] == [0, 0, 60]


def test_forged_and_repeated_answers_are_refused(study, store):
    client = create_app(study, store).test_client()
    auth = rater(client)
    shown = client.get("/api/next", headers=auth).get_json()
    disguise = Disguise(store.secret())
    public = {disguise.question(q.id): q.id for q in study.questions}
    assert shown["question"] in public and shown["total"] == 3  # seq0's check, a comparison on seq1 and seq2
    names = {n for q in study.questions for n in (q.method_a, q.method_b, q.video_a, q.video_b, q.sequence)}
    assert not [n for n in names if n in json.dumps(shown)]  # no method, sequence or file name reaches the page
    not_shown = next(public_id for public_id in public if public_id != shown["question"])
    refused = {
        "unknown question": (client.post("/api/answers", json={"question": "q9covst", "choice": "left"}, headers=auth), 400),
        "not shown yet": (client.post("/api/answers", json={"question": not_shown, "choice": "left"}, headers=auth), 400),
        "bad choice": (client.post("/api/answers", json={"question": shown["question"], "choice": "both"}, headers=auth), 400),
        "extra keys": (client.post("/api/answers", json={"question": shown["question"], "choice": "left", "rater": "x"},
                                   headers=auth), 400),
        "no token": (client.post("/api/answers", json={"question": shown["question"], "choice": "left"}), 401),
        "forged token": (client.post("/api/answers", json={"question": shown["question"], "choice": "left"},
                                     headers={"Authorization": "Bearer " + "A" * 32}), 401),
        "oversized": (client.post("/api/answers", data="x" * 5000, content_type="application/json", headers=auth), 413),
    }
    for what, (response, code) in refused.items():
        assert response.status_code == code, what
    assert answer_count(store) == 0
    assert client.post("/api/answers", json={"question": shown["question"], "choice": "left"}, headers=auth).status_code == 201
    again = client.post("/api/answers", json={"question": shown["question"], "choice": "right"}, headers=auth)
    assert again.status_code == 409
    [row] = store.rows()
    assert row["question_id"] == public[shown["question"]] and row["choice"] == row["left"]  # 'left': shown left
    right = {"a": "b", "b": "a"}[row["left"]]
    assert shown["left"] == f"/videos/{disguise.video(row['question_id'], row['left'])}.mp4"
    assert shown["right"] == f"/videos/{disguise.video(row['question_id'], right)}.mp4"
    assert row["seconds"] >= 0


def _post_raw(url: str, body: bytes, token: str) -> tuple[int, str, dict]:
    """POST ``body`` as JSON through a real HTTP connection: (status, content type, JSON body)."""
    host, port = url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        connection.request("POST", "/api/answers", body, {"Content-Type": "application/json",
                                                          "Authorization": f"Bearer {token}"})
        response = connection.getresponse()
        return response.status, response.getheader("Content-Type"), json.loads(response.read())
    finally:
        connection.close()


def test_nested_and_oversized_bodies_get_the_apis_json_errors(study, store):
    client = create_app(study, store).test_client()
    auth = rater(client)
    question = client.get("/api/next", headers=auth).get_json()["question"]
    nested = b"[" * 1000 + b"]" * 1000  # a RecursionError in the JSON parser, under the size limit
    oversized = json.dumps({"question": question, "choice": "left", "padding": "x" * 5000}).encode()
    for body, code in ((nested, 400), (oversized, 413)):
        response = client.post("/api/answers", data=body, content_type="application/json", headers=auth)
        assert (response.status_code, response.mimetype) == (code, "application/json"), response.data[:200]
        assert response.get_json()["error"]
    assert "2048 bytes" in response.get_json()["error"]
    with background_server(study, store) as url:  # waitress refuses the oversized body before the app sees it
        token = auth["Authorization"].removeprefix("Bearer ")
        assert _post_raw(url, nested, token)[:2] == (400, "application/json")
        status, content_type, data = _post_raw(url, oversized, token)
        assert (status, content_type) == (413, "application/json") and "2048 bytes" in data["error"]
        assert _post_raw(url, json.dumps({"question": question, "choice": "left"}).encode(), token)[0] == 201
    assert answer_count(store) == 1


def test_a_rater_gets_its_questions_once_and_no_more_by_asking_again(study, store):
    # make_study: 3 sequences x 2 comparisons, seq0's attention check: a rater gets the check and
    # one comparison on seq1 and seq2, and nothing more however often it asks
    client = create_app(study, store).test_client()
    auth = rater(client)
    disguise = Disguise(store.secret())
    mine = rater_questions(study, store.rater_of(auth["Authorization"].removeprefix("Bearer ")))
    by_id = study.by_id()
    assert len(mine) == 3 and by_id[mine[0]].attention + by_id[mine[1]].attention + by_id[mine[2]].attention == 1
    assert len({by_id[q].method_b for q in mine if not by_id[q].attention}) == 1
    seen = []
    while (shown := client.get("/api/next", headers=auth).get_json())["question"]:
        for _ in range(5):  # asked again before answering: the same question, sides and total
            assert client.get("/api/next", headers=auth).get_json() == shown
        assert shown["total"] == 3 and shown["answered"] == len(seen)
        seen.append(shown["question"])
        assert client.post("/api/answers", json={"question": shown["question"], "choice": "right"},
                           headers=auth).status_code == 201
    assert sorted(seen) == sorted(disguise.question(q) for q in mine) and answer_count(store) == 3
    for _ in range(5):  # done: asking again gives nothing more
        assert client.get("/api/next", headers=auth).get_json() == {"question": None, "answered": 3, "total": 3}
    for other in set(by_id) - set(mine):  # nor can it answer a question that is not its own
        refused = client.post("/api/answers", json={"question": disguise.question(other), "choice": "left"}, headers=auth)
        assert refused.status_code == 400
    assert answer_count(store) == 3


def test_a_rater_gets_its_share_of_questions_every_attention_check_among_them(tmp_path):
    study = make_study(tmp_path / "study", pairs=5, questions_per_rater=4)
    store = Store.open(tmp_path / "answers.sqlite", study)
    client = create_app(study, store).test_client()
    for _ in range(3):
        auth = rater(client)
        seen = []
        while (shown := client.get("/api/next", headers=auth).get_json())["question"]:
            seen.append(shown["question"])
            client.post("/api/answers", json={"question": shown["question"], "choice": "left"}, headers=auth)
        assert len(seen) == 4 and Disguise(store.secret()).question("check0") in seen and shown["total"] == 4
    store.close()


def test_a_rater_gets_one_comparison_and_one_sequences_checks_no_video_twice(prepared):
    # the prepared study: 4 sequences x 2 lengths x 4 comparisons, each sequence with a check per
    # length. A rater: the checks of one sequence and one comparison on the 3 others at both
    # lengths (8 questions, 16 videos); over raters every comparison about as often as the next
    import dataclasses
    from collections import Counter

    by_id = prepared.by_id()
    counts = Counter()
    for index in range(2000):
        mine = rater_questions(prepared, f"{index:016x}")
        assert rater_questions(prepared, f"{index:016x}") == mine  # asked again: the same, in the same order
        questions = [by_id[q] for q in mine]
        checks, pairs = [q for q in questions if q.attention], [q for q in questions if not q.attention]
        assert len(checks) == 2 and len({q.sequence for q in checks}) == 1 and len(pairs) == 6
        assert len({(q.study, q.method_b) for q in pairs}) == 1  # one comparison
        assert len({(q.sequence, q.length) for q in pairs}) == 6  # once per sequence and length
        assert checks[0].sequence not in {q.sequence for q in pairs}  # the real video's sequence in no pair
        assert len({v for q in questions for v in (q.video_a, q.video_b)}) == 16  # no video twice
        counts.update(mine)
    for question in prepared.questions:  # a check: 2000 / 4 sequences; a pair: 2000 / 4 comparisons x 3/4
        expected = 500 if question.attention else 375
        assert 0.8 * expected <= counts[question.id] <= 1.2 * expected, (question, counts[question.id])
    capped = dataclasses.replace(prepared, questions_per_rater=5)  # a cap: the checks kept, 3 pairs
    for index in range(50):
        questions = [by_id[q] for q in rater_questions(capped, f"{index:016x}")]
        assert len(questions) == 5 and sum(q.attention for q in questions) == 2


def test_a_study_of_one_sequence_still_gives_a_rater_pairs_beside_its_check(tmp_path):
    # its checks and its pairs share the sequence (prepare warns), never a video
    study = make_study(tmp_path / "study", pairs=1)
    by_id = study.by_id()
    for index in range(20):
        questions = [by_id[q] for q in rater_questions(study, f"{index:016x}")]
        assert sorted(q.attention for q in questions) == [False, True]
        assert len({v for q in questions for v in (q.video_a, q.video_b)}) == 4


def test_scores_of_raters_who_each_answer_one_comparison(prepared, tmp_path):
    # 40 raters through the server, each preferring ours in table1 and the other run in table2:
    # every comparison is scored from the answers to its questions, its Wilson interval from them
    store = Store.open(tmp_path / "answers.sqlite", prepared)
    client = create_app(prepared, store, raters_per_minute=0).test_client()
    disguise = Disguise(store.secret())
    public = {disguise.question(q.id): q for q in prepared.questions}
    for _ in range(40):
        auth = rater(client)
        rater_id = store.rater_of(auth["Authorization"].removeprefix("Bearer "))
        while (shown := client.get("/api/next", headers=auth).get_json())["question"]:
            question = public[shown["question"]]
            left, _ = store.shown_side(rater_id, question.id)
            wanted = "b" if question.study == "table2" else "a"
            click = "left" if left == wanted else "right"
            assert client.post("/api/answers", json={"question": shown["question"], "choice": click},
                               headers=auth).status_code == 201
    rows = store.rows()
    store.close()
    assert len(rows) == 40 * 8 and len({r["rater_id"] for r in rows}) == 40
    table, summary = scores.scores(rows, scores.comparisons(prepared), checks=True)
    assert summary["answers_counted"] == 40 * 6 and not summary["dropped_failed_attention"] + summary["dropped_unchecked"]
    assert len(table) == 8 and sum(row["raters"] for row in table) == 2 * 40  # a rater in one comparison per length
    for row in table:
        answered = [r for r in rows if (r["study"], r["length"], r["method_b"]) == (row["study"], row["length"], row["other"])]
        assert row["answers"] == len(answered) == 3 * row["raters"]  # 3 sequences each
        assert row["score"] == (1.0 if row["study"] == "table1" else 0.0) if row["answers"] else row["score"] is None
        if row["answers"]:
            assert (row["wilson_low"], row["wilson_high"]) == scores.wilson(row["ours_preferred"], row["answers"])


def test_two_tabs_of_one_rater_are_shown_the_same_question_and_sides(study, store):
    with background_server(study, store) as url:
        _, data = _request(url + "/api/raters", {})
        results = []
        threads = [threading.Thread(target=lambda: results.append(_request(url + "/api/next", token=data["token"])))
                   for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert [status for status, _ in results] == [200] * 8
    assert len({json.dumps(shown, sort_keys=True) for _, shown in results}) == 1


def test_a_database_of_another_study_is_refused(tmp_path, study, store):
    store.close()
    other = make_study(tmp_path / "other", pairs=2)
    with pytest.raises(InputError, match="another version of the study"):
        Store.open(tmp_path / "answers.sqlite", other)


def _request(url: str, data: dict | None = None, token: str | None = None):
    headers = {"Content-Type": "application/json", **({"Authorization": f"Bearer {token}"} if token else {})}
    body = json.dumps(data).encode() if data is not None else None
    request = urllib.request.Request(url, data=body, headers=headers, method="POST" if body is not None else "GET")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"null")


def _serve(study_folder, db, port):
    command = [sys.executable, "-m", "pipeline.preference", "serve", "--dataset", "demo", "--study", str(study_folder),
               "--db", str(db), "--port", str(port)]
    process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            if _request(url + "/api/next")[0] == 401:
                return process, url
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise AssertionError("the server did not start")


def test_a_killed_server_loses_no_committed_answer(tmp_path):
    study = make_study(tmp_path / "study", pairs=6)
    db = tmp_path / "answers.sqlite"
    process, url = _serve(study.folder, db, free_port())
    acknowledged, stop = [], threading.Event()

    def rate():
        try:
            rate_until_killed()
        except (OSError, http.client.HTTPException):  # the server is gone
            pass

    def rate_until_killed():
        while not stop.is_set():
            _, data = _request(url + "/api/raters", {})
            token = data["token"]
            while not stop.is_set():
                _, shown = _request(url + "/api/next", token=token)
                if not shown["question"]:
                    break
                status, _ = _request(url + "/api/answers", {"question": shown["question"], "choice": "left"}, token)
                if status == 201:
                    acknowledged.append(shown["question"])

    raters = [threading.Thread(target=rate) for _ in range(4)]
    try:
        for t in raters:
            t.start()
        deadline = time.time() + 30
        while len(acknowledged) < 40 and time.time() < deadline:
            time.sleep(0.01)
        os.kill(process.pid, signal.SIGKILL)  # mid-stream: answers are being written
        process.wait()
    finally:
        stop.set()
        for t in raters:
            t.join(timeout=30)
        process.kill()
    assert len(acknowledged) >= 40
    store = Store.open(db, study)
    with store.engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA integrity_check").scalar() == "ok"
    assert len(store.rows()) >= len(acknowledged)  # every acknowledged answer (+ one in flight at most per rater)
    assert len(store.rows()) <= len(acknowledged) + len(raters)
    store.close()
    process, url = _serve(study.folder, db, free_port())  # and the study goes on
    try:
        _, data = _request(url + "/api/raters", {})
        _, shown = _request(url + "/api/next", token=data["token"])
        assert _request(url + "/api/answers", {"question": shown["question"], "choice": "right"}, data["token"])[0] == 201
    finally:
        process.kill()
        process.wait()


def test_twenty_concurrent_raters_lose_and_duplicate_no_answer(tmp_path):
    study = make_study(tmp_path / "study", pairs=10)
    store = Store.open(tmp_path / "answers.sqlite", study)
    accepted, errors, duplicates = [], [], []
    with background_server(study, store, threads=8) as url:
        deadline = time.time() + 20

        def rate():
            _, data = _request(url + "/api/raters", {})
            token = data["token"]
            while time.time() < deadline:
                status, shown = _request(url + "/api/next", token=token)
                if status != 200 or not shown["question"]:
                    break
                body = {"question": shown["question"], "choice": "left"}
                status, _ = _request(url + "/api/answers", body, token)
                (accepted if status == 201 else errors).append((token, shown["question"], status))
                status, _ = _request(url + "/api/answers", body, token)  # a double click
                (duplicates if status == 409 else errors).append(status)

        threads = [threading.Thread(target=rate) for _ in range(20)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
    assert not errors, errors[:5]
    rows = store.rows()
    assert len(rows) == len(accepted) == len(duplicates) > 20
    assert len({(r["rater_id"], r["question_id"]) for r in rows}) == len(rows)
    assert len({r["rater_id"] for r in rows}) == 20
    store.close()


def _rows(answers):
    """Export input rows: (rater, study, method_b, choice) tuples."""
    return [{"rater_id": r, "question_id": f"q{i}", "left": "a", "choice": c, "seconds": 1.0, "source": "web",
             "study": s, "length": "short", "sequence": "seq", "method_a": "vid2vid" if s != "attention" else "real",
             "method_b": m} for i, (r, s, m, c) in enumerate(answers)]


def test_export_scores_and_intervals_match_a_hand_computed_case():
    # ten raters, one answer each to vid2vid vs frame_by_frame: 7 prefer ours; an eleventh rater
    # preferred the broken video of an attention check, so its answers (3 for ours) are dropped
    answers = [(f"r{i}", "table1", "frame_by_frame", "a" if i < 7 else "b") for i in range(10)]
    answers += [("r0", "attention", "broken", "a"), ("cheat", "attention", "broken", "b")]
    answers += [("cheat", "table1", "frame_by_frame", "a")] * 3
    table, summary = scores.scores(_rows(answers), keep_unchecked=True)
    [row] = table
    assert (row["answers"], row["ours_preferred"], row["raters"]) == (10, 7, 10)
    assert row["score"] == pytest.approx(0.7)
    # Wilson: (p + z^2/2n -+ z sqrt(p(1-p)/n + z^2/4n^2)) / (1 + z^2/n), z = 1.959964: 0.3968, 0.8922
    assert row["wilson_low"] == pytest.approx(0.39677, abs=1e-4) and row["wilson_high"] == pytest.approx(0.89222, abs=1e-4)
    assert summary["dropped_failed_attention"] == 1 and summary["answers_counted"] == 10
    # by default a rater who answered no attention check is not counted either (only r0 answered one)
    strict, summary = scores.scores(_rows(answers), {("table1", "long", "vid2vid", "covst")})
    assert [(r["other"], r["length"], r["answers"]) for r in strict] == [("covst", "long", 0), ("frame_by_frame", "short", 1)]
    assert summary["dropped_unchecked"] == 9 and strict[0]["paper"] == "no answers"
    assert scores.scores(_rows(answers), checks=False)[0][0]["answers"] == 10  # a study without checks
    # bootstrap over raters: rater A 5 of 5 for ours, rater B 0 of 5; resampling two raters gives
    # 1.0 (AA, p 1/4), 0.5 (AB, BA, p 1/2) or 0.0 (BB, p 1/4): the 95% interval is [0, 1]
    low, high = scores.bootstrap_over_raters({"A": (5, 5), "B": (0, 5)}, resamples=4000)
    assert (low, high) == (0.0, 1.0)
    low, high = scores.bootstrap_over_raters({f"r{i}": (1, 1) for i in range(5)})
    assert (low, high) == (1.0, 1.0)
    assert "| table1 | short | vid2vid / frame_by_frame | 0.70 / 0.30 | 0.40-0.89 |" in scores.paper_table(table)


def test_crowd_questions_and_answers_round_trip(tmp_path, study, store):
    questions = crowd.questions_csv(study, "https://example.org/study/", tmp_path / "questions.csv")
    rows = list(csv.DictReader(open(questions)))
    assert [r["question_id"] for r in rows] == [q.id for q in study.questions]
    assert all(r["left_url"].startswith("https://example.org/study/videos/") for r in rows)
    by_id = study.by_id()
    results = tmp_path / "batch.csv"
    with open(results, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["WorkerId", "AssignmentStatus", "WorkTimeInSeconds", "Input.question_id", "Input.left",
                         "Input.left_url", "Answer.choice"])
        for worker in ("W1", "W2"):
            for r in rows:  # every worker picks the video of method a (ours / the real one)
                writer.writerow([worker, "Approved", "12", r["question_id"], r["left"], r["left_url"],
                                 "left" if r["left"] == "a" else "right"])
        writer.writerow(["W1", "Approved", "3", rows[0]["question_id"], rows[0]["left"], "", "right"])  # a repeat
        writer.writerow(["W3", "Rejected", "3", rows[0]["question_id"], rows[0]["left"], "", "right"])
    done = crowd.import_answers(study, store, results)
    assert (done.added, done.duplicates, done.rejected) == (2 * len(rows), 1, 1)
    stored = store.rows()
    assert all(r["choice"] == "a" and r["source"] == "crowd" and r["seconds"] == 12 for r in stored)
    assert {r["rater_id"] for r in stored} == {crowd.crowd_rater(w, study.fingerprint) for w in ("W1", "W2")}
    table, _ = scores.scores(stored)
    assert {r["other"]: r["score"] for r in table} == {"frame_by_frame": 1.0, "covst": 1.0}
    assert all(r["answers"] == 2 * sum(q.method_b == r["other"] for q in by_id.values()) for r in table)
    bad = tmp_path / "bad.csv"
    bad.write_text("WorkerId,Input.question_id,Input.left,Answer.choice\nW9,%s,a,left\nW9,forged,a,left\n" % rows[0]["question_id"])
    with pytest.raises(InputError, match="line 3: question 'forged' is not in this study"):
        crowd.import_answers(study, store, bad)
    assert len(store.rows()) == len(stored)  # nothing of the bad file was added

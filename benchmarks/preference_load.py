"""Load and SIGKILL figures of the preference study's server (pipeline/preference/server.py, docs/preference.md).

    python benchmarks/preference_load.py [--raters 30] [--seconds 30] [--kill-after 10] [--study DIR]

Runs `python -m pipeline.preference serve` (waitress, its own process, a new SQLite database) and
``--raters`` scripted raters that answer as fast as they can, each fetching both videos of every
question it is shown and making a new rater when it is done. Two runs: ``--seconds`` of load and
the server stopped, then the same load with the server killed by SIGKILL after ``--kill-after``
seconds. After each, the database is opened again: SQLite's integrity check, and every answer the
server acknowledged (201) compared with the rows. The target: no acknowledged answer missing, no
5xx, integrity ok (a row never acknowledged is an answer in flight at the kill, at most one per
rater). The study is the tests' synthetic one (tests/test_preference.py: real 8-frame mp4s,
``--pairs`` sequences x 2 methods and an attention check) unless ``--study`` names a prepared one.
"""

from __future__ import annotations

import argparse
import collections
import http.client
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks._table import print_table  # noqa: E402
from pipeline.preference.server import Disguise  # noqa: E402
from pipeline.preference.store import Store  # noqa: E402
from pipeline.preference.study import Study  # noqa: E402


class Tally:
    """What the raters got: responses by status class, answers acknowledged, answer latencies."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.statuses = collections.Counter()
        self.acknowledged: list[tuple[str, str]] = []  # (token, question as sent)
        self.seconds: list[float] = []

    def response(self, status: int) -> None:
        with self.lock:
            self.statuses[f"{status // 100}xx"] += 1


def request(url: str, data: dict | None = None, token: str | None = None) -> tuple[int, object]:
    """One request (JSON in and out; a video's bytes out): (status, body)."""
    headers = {"Content-Type": "application/json", **({"Authorization": f"Bearer {token}"} if token else {})}
    body = json.dumps(data).encode() if data is not None else None
    req = urllib.request.Request(url, data=body, headers=headers, method="POST" if body is not None else "GET")
    try:
        with urllib.request.urlopen(req, timeout=60) as response:
            payload = response.read()
            return response.status, json.loads(payload) if response.headers.get_content_type() == "application/json" else payload
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"null")


def rate(url: str, stop: threading.Event, tally: Tally) -> None:
    """A scripted rater (a new one whenever it is done) until ``stop`` or the server is gone."""
    try:
        while not stop.is_set():
            status, data = request(url + "/api/raters", {})
            tally.response(status)
            if status == 201:
                answer_all(url, data["token"], stop, tally)
    except (OSError, http.client.HTTPException):  # killed
        pass


def answer_all(url: str, token: str, stop: threading.Event, tally: Tally) -> None:
    while not stop.is_set():
        status, shown = request(url + "/api/next", token=token)
        tally.response(status)
        if status != 200 or not shown["question"]:
            return
        for side in ("left", "right"):
            tally.response(request(url + shown[side])[0])
        started = time.perf_counter()
        status, _ = request(url + "/api/answers", {"question": shown["question"], "choice": random.choice(["left", "right"])},
                            token)
        tally.response(status)
        if status == 201:
            with tally.lock:
                tally.acknowledged.append((token, shown["question"]))
                tally.seconds.append(time.perf_counter() - started)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(study: Path, db: Path, threads: int) -> tuple[subprocess.Popen, str]:
    """The study served by the documented command, no limit on new raters; (process, base URL)."""
    port = free_port()
    command = [sys.executable, "-m", "pipeline.preference", "serve", "--dataset", "demo", "--study", str(study),
               "--db", str(db), "--port", str(port), "--threads", str(threads), "--raters-per-minute", "0"]
    process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               env={**os.environ, "PYTHONPATH": str(REPO)})
    url = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            if request(url + "/api/next")[0] == 401:
                return process, url
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError("the server did not start")


def run(study: Study, db: Path, raters: int, seconds: float, kill: bool, threads: int) -> dict:
    """``raters`` raters for ``seconds``; then the server is stopped (SIGTERM) or killed (SIGKILL)."""
    process, url = start_server(study.folder, db, threads)
    tally, stop = Tally(), threading.Event()
    workers = [threading.Thread(target=rate, args=(url, stop, tally)) for _ in range(raters)]
    started = time.perf_counter()
    for worker in workers:
        worker.start()
    time.sleep(seconds)
    if kill:
        os.kill(process.pid, signal.SIGKILL)
    stop.set()
    if not kill:
        for worker in workers:
            worker.join()
    elapsed = time.perf_counter() - started
    process.send_signal(signal.SIGTERM)
    process.wait()
    for worker in workers:
        worker.join()
    return {**checked(study, db, tally.acknowledged), "statuses": tally.statuses, "seconds": elapsed,
            "latency": sorted(tally.seconds)}


def checked(study: Study, db: Path, acknowledged: list[tuple[str, str]]) -> dict:
    """The database after the run: its integrity, and the acknowledged answers against its rows."""
    store = Store.open(db, study)
    try:
        with store.engine.connect() as connection:
            integrity = connection.exec_driver_sql("PRAGMA integrity_check").scalar()
        disguise = Disguise(store.secret())
        question = {disguise.question(q.id): q.id for q in study.questions}
        rater = {token: store.rater_of(token) for token in {token for token, _ in acknowledged}}
        answered = {(rater[token], question[public]) for token, public in acknowledged}
        rows = {(row["rater_id"], row["question_id"]) for row in store.rows()}
    finally:
        store.close()
    return {"integrity": integrity, "acknowledged": len(answered), "rows": len(rows), "missing": len(answered - rows),
            "unacknowledged": len(rows - answered)}


def synthetic_study(folder: Path, pairs: int) -> Study:
    from tests.test_preference import make_study

    return make_study(folder, pairs=pairs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--raters", type=int, default=30)
    parser.add_argument("--seconds", type=float, default=30.0, help="of load in the first run")
    parser.add_argument("--kill-after", type=float, default=10.0, help="seconds of load before the SIGKILL")
    parser.add_argument("--threads", type=int, default=8, help="the server's (serve --threads)")
    parser.add_argument("--pairs", type=int, default=10, help="sequences of the synthetic study (x 2 methods)")
    parser.add_argument("--study", type=Path, help="a prepared study folder (default: the synthetic one)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        study = Study.load(args.study) if args.study else synthetic_study(Path(tmp) / "study", args.pairs)
        rows = []
        for name, seconds, kill in (("load", args.seconds, False), ("SIGKILL", args.kill_after, True)):
            result = run(study, Path(tmp) / f"{name}.sqlite", args.raters, seconds, kill, args.threads)
            latency = result["latency"] or [float("nan")]
            rows.append([name, f"{result['seconds']:.0f}", result["acknowledged"], result["rows"], result["missing"],
                         result["unacknowledged"], result["statuses"]["2xx"], result["statuses"]["4xx"],
                         result["statuses"]["5xx"], f"{result['acknowledged'] / result['seconds']:.0f}",
                         f"{1000 * latency[len(latency) // 2]:.0f} / {1000 * latency[int(0.99 * (len(latency) - 1))]:.0f}",
                         result["integrity"]])
    print_table(f"{args.raters} raters, {len(study.questions)} questions, serve --threads {args.threads}",
                ["run", "s", "acknowledged", "rows", "missing", "rows not acknowledged", "2xx", "4xx", "5xx",
                 "answers/s", "answer ms (median / p99)", "integrity"], rows)


if __name__ == "__main__":
    main()

"""The study's web app (Flask, served by waitress): pairs of videos side by side, looping in sync,
method names hidden and left / right drawn at random per rater and question; the paper's question
and two buttons; every answer one database transaction (pipeline/preference/store.py).

API (JSON; ``Authorization: Bearer <token>`` after ``POST /api/raters``):

- ``POST /api/raters`` -> 201 ``{"token"}``: a new anonymous rater; 429 (with Retry-After) past
  ``raters_per_minute`` new raters from one client address in a minute (:class:`RaterLimit`);
- ``GET /api/next`` -> ``{"question", "left", "right", "answered", "total"}`` (``question`` null
  when the rater is done): the rater's next question of its own few (:func:`rater_questions`: no
  video twice), its side recorded as it is shown; the question's id and its videos' URLs are
  names only the server can compute (:class:`Disguise`);
- ``POST /api/answers`` ``{"question", "choice": "left" | "right"}`` -> 201; 400 for a body that
  is not that object (JSON nested however deep included), a question of another study or one not
  shown to this rater, 401 without a valid token, 409 for a second answer, 413 for a body over
  2 KiB (refused by waitress before it is read);
- ``GET /videos/<id>.mp4``: one side of a question, looked up by its id
  (:meth:`Disguise.video`; no request text reaches the file system; anything else is 404), with
  nothing that names its file: no file name or date, the URL's id as ETag (ranges work), and
  padded to the size of every video of its length (:func:`served_videos`).

Every error is JSON, ``{"error": <why>}``, waitress's own refusals included (JsonErrorTask).
"""

from __future__ import annotations

import collections
import contextlib
import hashlib
import hmac
import json
import logging
import math
import random
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from flask import Flask, Response, abort, jsonify, render_template, request
from waitress.channel import HTTPChannel
from waitress.server import BaseWSGIServer
from waitress.task import ErrorTask

from pipeline.core.errors import InputError
from pipeline.preference.store import AlreadyAnswered, Store
from pipeline.preference.study import BOX_HEADER, Study, other_side, padded_mp4

log = logging.getLogger(__name__)
MAX_BODY = 2048
TOO_LARGE = f"the request body is over {MAX_BODY} bytes"
VIDEO_ID = re.compile(r"^[0-9a-f]{16}$")
RATERS_PER_MINUTE = 30  # new raters one client address may make in any minute (serve --raters-per-minute)


def rater_questions(study: Study, rater: str) -> list[str]:
    """The questions a rater answers, in an order of its own, all drawn at random from its id (so
    asking again never changes them): one comparison (ours against one method of one study, each
    comparison as likely as the next, so that over many raters each gets about the same number of
    answers) on every sequence at every length, and the attention checks of one sequence that has
    them, which then has no comparison for this rater (a study of one sequence excepted); at most
    ``questions_per_rater`` (0 = no cap), the checks kept.

    So what recurs among a rater's questions cannot tell it ours: no video is in two of them (ours'
    clip of a sequence and length is in every comparison of it, the same bytes, and was the video
    that recurred when a rater got several), no sequence and length in two of its pairs, and both
    methods it sees are in all its pairs. A sequence's short clip is the first frames of its long
    video, so both lengths get the same comparison: across them both sides' content recurs alike."""
    rng = random.Random(rater)
    pairs = [q for q in study.questions if not q.attention]
    checks = [q for q in study.questions if q.attention]
    if checks:
        sequence = rng.choice(sorted({q.sequence for q in checks}))
        checks = [q for q in checks if q.sequence == sequence]
    comparisons = sorted({(q.study, q.method_b) for q in pairs})
    if comparisons:
        comparison = rng.choice(comparisons)
        pairs = [q for q in pairs if (q.study, q.method_b) == comparison]
        elsewhere = [q for q in pairs if q.sequence not in {c.sequence for c in checks}]
        pairs = elsewhere or pairs  # one sequence: its checks and its pairs, their videos still apart
    rng.shuffle(pairs)
    chosen, served = [], set()
    for question in checks + pairs:  # no video twice, whatever the study holds (a file is named by its bytes)
        videos = {question.video_a, question.video_b}
        if not videos & served:
            chosen.append(question.id)
            served |= videos
    if study.questions_per_rater:
        chosen = chosen[:max(study.questions_per_rater, len(checks))]
    rng.shuffle(chosen)
    return chosen


@dataclass(frozen=True)
class Disguise:
    """The names a rater's browser gets for the study's questions and their videos: HMAC-SHA256
    under the study's secret (:meth:`Store.secret`, never sent). The study's own names are hashes
    of the videos' bytes, which a rater downloads (sent, a question's own id told which side was
    ours); these cannot be computed from anything sent, and a video's URL differs in every question."""

    secret: str

    def name(self, *parts: str) -> str:
        return hmac.new(self.secret.encode(), "\0".join(parts).encode(), hashlib.sha256).hexdigest()[:16]

    def question(self, question: str) -> str:
        return self.name("question", question)

    def video(self, question: str, side: str) -> str:
        """The URL id of one side ('a' / 'b') of a question."""
        return self.name("video", question, side)


@dataclass(frozen=True)
class ServedVideo:
    path: Path
    size: int  # bytes sent: the file padded to the size of every video of its length


def served_videos(study: Study, disguise: Disguise) -> dict[str, ServedVideo]:
    """URL id -> the file of one side of a question and the size it is served at: the largest
    file of the question's length plus a 'free' box, so every video of a length is the same size
    and a response's length names no file (nor tells ours or an attention check's broken one)."""
    sides = [(q, side, study.video_path(vid)) for q in study.questions for side, vid in (("a", q.video_a),
                                                                                           ("b", q.video_b))]
    sizes = {}
    for question, _, path in sides:
        if path is None or not path.is_file():
            raise InputError(study.folder, f"a video of question {question.id} is missing: prepare the study again")
        sizes[question.length] = max(sizes.get(question.length, 0), path.stat().st_size + BOX_HEADER)
    return {disguise.video(q.id, side): ServedVideo(path, sizes[q.length]) for q, side, path in sides}


def video_response(url_id: str, data: bytes) -> Response:
    """A video as a rater's browser gets it: no file name, no modification time, and an ETag that
    is the URL's own id, so ranges and revalidation work per question and side, never per file."""
    response = Response(data, mimetype="video/mp4")
    response.set_etag(url_id)
    response.headers["Cache-Control"] = "private, max-age=3600"
    return response.make_conditional(request, accept_ranges=True, complete_length=len(data))


class RaterLimit:
    """At most ``per_minute`` new raters per client address in any 60 s (0: no limit), so that one
    client cannot make raters by the hundred to answer the study over and over."""

    WINDOW = 60.0

    def __init__(self, per_minute: int, clock=time.monotonic) -> None:
        self.per_minute, self.clock = per_minute, clock
        self.made: dict[str, collections.deque] = {}  # address -> when its recent raters were made
        self.lock = threading.Lock()

    def wait(self, address: str) -> float:
        """0 when ``address`` may make a rater now (and it is counted), else the seconds it waits."""
        if not self.per_minute:
            return 0.0
        now = self.clock()
        with self.lock:
            self._forget(now)
            recent = self.made.setdefault(address, collections.deque())
            if len(recent) >= self.per_minute:
                return recent[0] + self.WINDOW - now
            recent.append(now)
            return 0.0

    def _forget(self, now: float) -> None:
        """Drop what is older than the window, and the addresses left with nothing."""
        for address, recent in list(self.made.items()):
            while recent and recent[0] <= now - self.WINDOW:
                recent.popleft()
            if not recent:
                del self.made[address]


def request_json():
    """The request's JSON body; None when it is not JSON, nested too deeply for the parser
    included (``[[[...`` raises RecursionError, not ValueError)."""
    try:
        return request.get_json(silent=True)
    except RecursionError:
        return None


def create_app(study: Study, store: Store, raters_per_minute: int = RATERS_PER_MINUTE) -> Flask:
    """The study's Flask app (the API above), its answers in ``store``."""
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY
    limit = RaterLimit(raters_per_minute)
    disguise = Disguise(store.secret())
    disguised = {disguise.question(q.id): q.id for q in study.questions}
    videos = served_videos(study, disguise)

    def current_rater() -> str:
        header = request.headers.get("Authorization", "")
        token = header.removeprefix("Bearer ").strip() if header.startswith("Bearer ") else ""
        rater = store.rater_of(token) if 16 <= len(token) <= 64 else None
        if rater is None:
            abort(401, "no valid rater token")
        return rater

    @app.after_request
    def headers(response):
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Content-Security-Policy"] = "default-src 'self'; media-src 'self'"
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers["Cache-Control"] = response.headers.get("Cache-Control", "no-store")
        return response

    @app.errorhandler(400)
    @app.errorhandler(401)
    @app.errorhandler(404)
    @app.errorhandler(405)
    @app.errorhandler(409)
    @app.errorhandler(413)
    @app.errorhandler(429)
    def error(err):
        response = jsonify(error=TOO_LARGE if err.code == 413 else err.description)
        if getattr(err, "retry_after", None):
            response.headers["Retry-After"] = str(err.retry_after)
        return response, err.code

    @app.errorhandler(500)
    def failure(err):
        log.exception("request failed: %s", request.path)
        return jsonify(error="the server failed; try again"), 500

    @app.get("/")
    def page():
        return render_template("study.html", question=study.question)

    @app.post("/api/raters")
    def new_rater():
        wait = limit.wait(request.remote_addr or "")
        if wait:
            abort(429, f"too many new raters from this address: try again in {math.ceil(wait)} s",
                  retry_after=math.ceil(wait))
        _, token = store.new_rater()
        return jsonify(token=token), 201

    @app.get("/api/next")
    def next_question():
        rater = current_rater()
        mine = rater_questions(study, rater)
        done = store.answered(rater) & set(mine)
        todo = [q for q in mine if q not in done]
        if not todo:  # done: asking again gives no other question
            return jsonify(question=None, answered=len(done), total=len(mine))
        question = todo[0]
        left = store.show(rater, question, random.SystemRandom().choice("ab"))
        return jsonify(question=disguise.question(question), left=f"/videos/{disguise.video(question, left)}.mp4",
                       right=f"/videos/{disguise.video(question, other_side(left))}.mp4", answered=len(done),
                       total=len(mine))

    @app.post("/api/answers")
    def answer():
        rater = current_rater()
        body = request_json()
        if not isinstance(body, dict) or set(body) != {"question", "choice"}:
            abort(400, 'expected {"question": <id>, "choice": "left" | "right"}')
        question = disguised.get(body["question"]) if isinstance(body["question"], str) else None
        choice = body["choice"]
        if question is None:
            abort(400, "no such question in this study")
        if choice not in ("left", "right"):
            abort(400, "choice must be 'left' or 'right'")
        try:  # only /api/next shows a rater its own questions
            store.answer_click(rater, question, choice)
        except KeyError:
            abort(400, "this question was not shown to this rater")
        except AlreadyAnswered:
            abort(409, "this rater answered this question already")
        return jsonify(ok=True), 201

    @app.get("/videos/<video>.mp4")
    def video(video: str):
        served = videos.get(video) if VIDEO_ID.fullmatch(video) else None
        if served is None or not served.path.is_file():
            abort(404, "no such video")
        return video_response(video, padded_mp4(served.path.read_bytes(), served.size))

    return app


class JsonErrorTask(ErrorTask):
    """Waitress's own refusals (a body over ``MAX_BODY``, a malformed request: answered before the
    app sees the request) as the API's JSON error instead of waitress's plain text."""

    def execute(self):
        err = self.request.error
        body = json.dumps({"error": TOO_LARGE if err.code == 413 else f"{err.reason}: {err.body}"}).encode()
        self.status = f"{err.code} {err.reason}"
        self.response_headers.extend([("Content-Type", "application/json"), ("X-Content-Type-Options", "nosniff")])
        self.set_close_on_finish()
        self.content_length = len(body)
        self.write(body)


class JsonErrorChannel(HTTPChannel):
    error_task_class = JsonErrorTask


def create_server(app: Flask, host: str, port: int, threads: int):
    """The study's waitress server (not yet running): bodies over ``MAX_BODY`` refused before they
    are read, and every refusal in JSON."""
    import waitress

    listeners = {}
    server = waitress.create_server(app, map=listeners, host=host, port=port, threads=threads,
                                    max_request_body_size=MAX_BODY, ident="vid2vid-preference")
    for listener in listeners.values():
        if isinstance(listener, BaseWSGIServer):
            listener.channel_class = JsonErrorChannel
    return server


def serve(study: Study, store: Store, host: str = "127.0.0.1", port: int = 8000, threads: int = 8,
          raters_per_minute: int = RATERS_PER_MINUTE) -> None:
    """Serve the study with waitress until interrupted."""
    server = create_server(create_app(study, store, raters_per_minute), host, port, threads)
    log.info("study of %s (%d questions) on http://%s:%d/ ; answers in %s", study.dataset, len(study.questions),
             host, port, store.engine.url)
    server.run()


@contextlib.contextmanager
def background_server(study: Study, store: Store, host: str = "127.0.0.1", port: int = 0, threads: int = 8,
                      raters_per_minute: int = RATERS_PER_MINUTE):
    """The study served by waitress in a thread (port 0: a free one); yields its base URL."""
    server = create_server(create_app(study, store, raters_per_minute), host, port, threads)
    closing = threading.Event()

    def run() -> None:
        try:
            server.run()
        except OSError:  # select() on the socket closed below: the server is stopping
            if not closing.is_set():
                raise

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield f"http://{host}:{server.effective_port}"
    finally:
        closing.set()
        server.close()
        thread.join(timeout=10)

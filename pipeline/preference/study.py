"""A human preference study (paper section 4, "Human preference score"; Tables 1-2): its questions
and the videos they show, prepared from the synthesized val videos.

A question pairs two methods' videos of one input sequence: ours (``preference.ours``) against
each other method of ``evaluate.methods`` (study ``table1``: the baselines) or of
``evaluate.ablations`` (``table2``), on a short clip (the first ``lengths.short`` frames) and on
the whole sequence (``lengths.long``; 0 = all). Attention checks pair the real video with a
broken one (its frames shuffled in time, half of each frame's tiles shuffled, strong noise; its
file no larger than the others, :func:`fitted_crf`): a rater who prefers the broken one is not
judging and is dropped by the export. A web rater gets one comparison and one sequence's checks
(server.py, ``rater_questions``), so that no video recurs among its questions.

A video file is named by the hash of its bytes and a question by the hash of its two videos;
a rater's browser gets neither (a rater could compute them from the videos): the server sends
names derived from a secret (server.py, Disguise), so nothing a rater is sent names a method. The study folder
(``study.json`` + ``videos/<sha256>.mp4``) is written as one atomic folder and is the only place
the server reads videos from. When a sequence is no longer than the short clips, its long
videos would repeat the short ones, so it has short questions only (Cityscapes' 30-frame
snippets: the long videos are the cityscapes_long dataset's study).
"""

from __future__ import annotations

import hashlib
import json
import logging
import struct
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from pipeline.core.atomic import atomic_dir
from pipeline.core.errors import InputError

log = logging.getLogger(__name__)
QUESTION = ("Which video looks more like a video captured by a real camera? "
            "Judge both the image quality and how coherent the video is over time.")
STUDIES = ("table1", "table2")
REAL, BROKEN = "real", "broken"
BOX_HEADER = 8  # an MP4 box starts with its 32-bit size and its 4-letter type
CRF, WORST_CRF = 18, 51  # libx264's quality of the study's videos; its coarsest


@dataclass(frozen=True)
class Question:
    id: str
    study: str  # table1 / table2 / attention
    length: str  # short / long
    sequence: str
    method_a: str  # ours (attention: the real video)
    method_b: str  # the method ours is compared with (attention: the broken video)
    video_a: str
    video_b: str

    @property
    def attention(self) -> bool:
        return self.study == "attention"

    def row(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Study:
    """A prepared study: ``folder/study.json`` and its videos."""

    folder: Path
    dataset: str
    question: str
    fingerprint: str
    questions: list[Question]
    videos: dict[str, str]  # video id -> file name in folder/videos/
    questions_per_rater: int

    @classmethod
    def load(cls, folder: str | Path) -> "Study":
        """The study in ``folder``, its path made absolute against the current directory (a
        relative ``results`` in the config works wherever the server resolves its files)."""
        folder = Path(folder).absolute()
        path = folder / "study.json"
        if not path.is_file():
            raise InputError(path, "no prepared study here (run `python -m pipeline.preference prepare` first)")
        try:
            data = json.loads(path.read_text())
            return cls(folder, data["dataset"], data["question"], data["fingerprint"],
                       [Question(**q) for q in data["questions"]], dict(data["videos"]),
                       int(data.get("questions_per_rater", 0)))
        except (ValueError, KeyError, TypeError) as err:
            raise InputError(path, f"not a study file ({err})") from None

    def by_id(self) -> dict[str, Question]:
        return {q.id: q for q in self.questions}

    def video_path(self, video_id: str) -> Path | None:
        """The file of a video id of this study, or None: request text never becomes a path."""
        name = self.videos.get(video_id)
        return self.folder / "videos" / name if name else None


def padded_mp4(data: bytes, size: int) -> bytes:
    """An MP4 made ``size`` bytes long by a top-level 'free' box at its end, which players skip
    (ISO/IEC 14496-12); ``size`` leaves room for the box's header."""
    padding = size - len(data)
    if padding < BOX_HEADER:
        raise ValueError(f"{len(data)} bytes cannot be padded to {size}")
    return data + struct.pack(">I4s", padding, b"free") + bytes(padding - BOX_HEADER)


def other_side(side: str) -> str:
    """'a' <-> 'b': the other video of a question."""
    return "b" if side == "a" else "a"


def chosen_video(left: str, click: str) -> str:
    """The video ('a' / 'b') a rater chose by clicking 'left' or 'right', ``left`` on the left."""
    return left if click == "left" else other_side(left)


def _digest(*parts: str, size: int = 16) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:size]


def broken(frames: np.ndarray, seed: int) -> np.ndarray:
    """The attention check's obviously broken video: frames shuffled in time, half of each frame's
    16x16 tiles shuffled, Gaussian noise of std 60."""
    rng = np.random.default_rng(seed)
    out = frames[rng.permutation(len(frames))].astype(np.float32)
    tile = 16
    h, w = (out.shape[1] // tile) * tile, (out.shape[2] // tile) * tile
    for frame in out:
        tiles = frame[:h, :w].reshape(h // tile, tile, w // tile, tile, 3).swapaxes(1, 2).reshape(-1, tile, tile, 3)
        chosen = rng.choice(len(tiles), len(tiles) // 2, replace=False)
        tiles[chosen] = tiles[rng.permutation(chosen)]
        frame[:h, :w] = tiles.reshape(h // tile, w // tile, tile, tile, 3).swapaxes(1, 2).reshape(h, w, 3)
        frame += rng.normal(0, 60, frame.shape)
    return np.clip(out, 0, 255).astype(np.uint8)


def fitted_crf(size_at, target: int, best: int = CRF, worst: int = WORST_CRF) -> int:
    """The best quality (lowest crf) whose encoding, ``size_at(crf)`` bytes, is no larger than
    ``target`` (``worst`` when none is): a bisection, the size falling as the crf rises."""
    while best < worst:
        middle = (best + worst) // 2
        if size_at(middle) <= target:
            worst = middle
        else:
            best = middle + 1
    return best


def transcoded(source: Path, output: Path, crf: int) -> Path:
    """``source`` re-encoded by libx264 at ``crf`` (yuv420p, as model.synthesis.Mp4Writer writes)."""
    from pipeline.core.video import ffmpeg_exe

    subprocess.run([ffmpeg_exe(), "-v", "error", "-y", "-i", str(source), "-c:v", "libx264", "-pix_fmt", "yuv420p",
                    "-crf", str(crf), "-f", "mp4", str(output)], check=True, capture_output=True)
    return output


def compared_methods(settings, studies: list[str]) -> dict[str, list[str]]:
    """study -> the methods ours is compared with (Table 1: evaluate.methods; Table 2: the
    ablations that are not baselines)."""
    ours = settings.preference.ours
    methods = list(settings.evaluate.methods)
    if ours not in methods + list(settings.evaluate.ablations):
        raise InputError("config key 'preference.ours'", f"{ours!r} is in neither evaluate.methods nor evaluate.ablations")
    table1 = [m for m in methods if m != ours]
    table2 = [m for m in settings.evaluate.ablations if m != ours and m not in methods]
    return {s: {"table1": table1, "table2": table2}[s] for s in studies}


def refuse_other_answers(answers_db: str | Path | None, fingerprint: str) -> None:
    """Stop before a new study replaces the one whose answers ``answers_db`` holds."""
    from pipeline.preference.store import Store, database_exists

    if answers_db is None or not database_exists(answers_db):
        return

    store = Store.open(answers_db)
    try:
        held, answered = store.fingerprint(), len(store.rows())
    finally:
        store.close()
    if held not in (None, fingerprint) and answered:
        raise InputError(answers_db, f"holds {answered} answers to the study being replaced (its videos or "
                                     "questions changed): move the database away first to start a new study")


def prepare(ds, sequences: list[str], output: Path, studies: list[str] | None = None,
            answers_db: str | Path | None = None) -> Study:
    """Write the study of ``ds`` (its ``preference`` settings) for ``sequences`` into ``output``
    (a folder, replaced whole when complete); refused while ``answers_db`` holds answers to a
    different study."""
    from model.synthesis import Mp4Writer
    from pipeline.core.synthesized import sequence_frames
    from pipeline.datasets.manifest import frame_rates

    cfg = ds.settings.preference
    studies = list(studies or cfg.studies)
    unknown = sorted(set(studies) - set(STUDIES))
    if unknown:
        raise InputError("config key 'preference.studies'", f"unknown studies {unknown} (known: {list(STUDIES)})")
    compared = compared_methods(ds.settings, studies)
    ours = cfg.ours
    manifest = ds.results / "frames" / "manifest.csv"
    rates = frame_rates(manifest) if manifest.is_file() else {}
    methods = [ours] + sorted({m for ms in compared.values() for m in ms})
    if not sequences:
        raise InputError(ds.results / "synth", "no sequences to put in the study")
    checks = 2 if cfg.attention_checks else 0  # a web rater's: one sequence's (server.py, rater_questions)
    if cfg.questions_per_rater and cfg.questions_per_rater <= checks:
        raise InputError("config key 'preference.questions_per_rater'",
                         f"{cfg.questions_per_rater} leaves no room for pairs beside up to {checks} attention checks "
                         "(a rater's: one sequence's, at each length)")
    if cfg.attention_checks and len(sequences) == 1:
        log.warning("one sequence: a web rater's attention checks show the real video of the sequence its "
                    "comparisons show (with two or more, a rater's checks take a sequence of their own)")
    questions, videos = [], {}
    with atomic_dir(output) as folder:
        (folder / "videos").mkdir()

        def named(tmp: Path) -> str:
            """Name a written mp4 by the sha256 of its bytes."""
            vid = hashlib.sha256(tmp.read_bytes()).hexdigest()[:16]
            tmp.rename(folder / "videos" / f"{vid}.mp4")
            videos[vid] = f"{vid}.mp4"
            return vid

        def written(frames, fps: float, path: Path) -> Path:
            """Write an mp4 (libx264 at crf 18)."""
            with Mp4Writer(path, fps) as writer:
                for frame in frames:
                    writer.write(frame)
            return path

        def video(frames, fps: float) -> str:
            return named(written(frames, fps, folder / "videos" / "writing.mp4"))

        def broken_video(clip: np.ndarray, fps: float, seed: int, beside: list[str]) -> str:
            """The attention check's broken clip re-encoded at the best quality whose file is no
            larger than the median of the videos ``beside`` it (at crf 18 its noise made it twice
            their size or more, which told it apart without a look at it)."""
            source = written(broken(clip, seed), fps, folder / "videos" / "broken.mp4")
            fitted = folder / "videos" / "fitting.mp4"
            target = int(np.median([(folder / "videos" / videos[vid]).stat().st_size for vid in beside]))
            crf = fitted_crf(lambda crf: transcoded(source, fitted, crf).stat().st_size, target)
            vid = named(transcoded(source, fitted, crf))
            source.unlink()
            return vid

        from pipeline.core.images import read_rgb

        for index, sequence in enumerate(sequences):
            _, real, files = sequence_frames(ds, methods, sequence)
            fps = rates.get(sequence, ds.settings.frames.sequence_fps)
            counts = {length: len(real) if frames == 0 else min(frames, len(real))
                      for length, frames in (("short", cfg.lengths.short), ("long", cfg.lengths.long))}
            if counts["long"] <= counts["short"]:
                log.info("%s: %d frames, no longer than the short clips: short questions only", sequence, len(real))
                del counts["long"]
            for length, count in counts.items():
                ids = {m: video((read_rgb(f) for f in files[m][:count]), fps) for m in methods}
                for study, others in compared.items():
                    for other in others:
                        qid = _digest(study, length, ids[ours], ids[other], size=12)
                        questions.append(Question(qid, study, length, sequence, ours, other, ids[ours], ids[other]))
                if index < cfg.attention_checks:
                    clip = np.asarray(real[:count])
                    real_id = video(clip, fps)
                    broken_id = broken_video(clip, fps, index, [*ids.values(), real_id])
                    questions.append(Question(_digest("attention", length, real_id, broken_id, size=12), "attention",
                                              length, sequence, REAL, BROKEN, real_id, broken_id))
        question_text = cfg.question or QUESTION
        fingerprint = _digest(question_text, json.dumps([q.row() for q in questions], sort_keys=True), size=64)
        study = Study(Path(output), ds.name, question_text, fingerprint, questions, videos, cfg.questions_per_rater)
        refuse_other_answers(answers_db, fingerprint)
        (folder / "study.json").write_text(json.dumps({
            "dataset": ds.name, "question": study.question, "fingerprint": fingerprint,
            "questions_per_rater": cfg.questions_per_rater, "studies": studies, "ours": ours,
            "questions": [q.row() for q in questions], "videos": videos}, indent=1))
    counts = {s: sum(q.study == s for q in questions) for s in [*studies, "attention"]}
    log.info("study of %s: %d questions %s, %d videos -> %s", ds.name, len(questions), counts, len(videos), output)
    return study

"""The study on a crowdsourcing platform (the paper: 10 workers per question, section 4).

``questions_csv`` writes one row per question for a batch of HITs (Amazon Mechanical Turk's
"Input" columns: ``question_id``, ``left`` (which video is on the left, drawn per question),
``left_url``, ``right_url``); publish the study's ``videos/`` folder under ``--base-url`` and ask
for 10 assignments per HIT. ``import_answers`` reads the platform's results CSV (by default
MTurk's batch results: ``WorkerId``, ``Input.question_id``, ``Input.left``, ``Answer.choice`` =
left / right, ``WorkTimeInSeconds``; rejected assignments skipped) into the study's database,
each worker an anonymous rater (``crowd-`` + a hash of the worker id salted with the study's
fingerprint). Every row is checked
before any is written, so a bad file adds nothing; a worker's second answer to a question is
skipped and counted.
"""

from __future__ import annotations

import csv
import hashlib
import random
from dataclasses import dataclass
from pathlib import Path

from pipeline.core.atomic import atomic_file
from pipeline.core.errors import InputError
from pipeline.preference.store import AlreadyAnswered, Store
from pipeline.preference.study import Study, chosen_video, other_side

MTURK = {"worker": "WorkerId", "question": "Input.question_id", "left": "Input.left", "choice": "Answer.choice",
         "seconds": "WorkTimeInSeconds", "status": "AssignmentStatus"}


def questions_csv(study: Study, base_url: str, output: Path, seed: int = 0) -> Path:
    rng = random.Random(seed)
    base = base_url.rstrip("/")
    with atomic_file(output) as tmp, open(tmp, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["question_id", "left", "left_url", "right_url"])
        for q in study.questions:
            left = rng.choice("ab")
            videos = {"a": study.videos[q.video_a], "b": study.videos[q.video_b]}
            writer.writerow([q.id, left, f"{base}/videos/{videos[left]}", f"{base}/videos/{videos[other_side(left)]}"])
    return output


def crowd_rater(worker: str, salt: str) -> str:
    """An anonymous rater id: the worker id hashed with the study's fingerprint as salt."""
    return "crowd-" + hashlib.sha256(f"{salt}\0{worker}".encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Imported:
    added: int
    duplicates: int
    rejected: int


def import_answers(study: Study, store: Store, results_csv: Path, columns: dict[str, str] = MTURK) -> Imported:
    path = Path(results_csv)
    if not path.is_file():
        raise InputError(path, "no such results file")
    questions = study.by_id()
    rows, rejected = [], 0
    with open(path, newline="") as handle:
        reader = csv.DictReader(handle)
        missing = [columns[k] for k in ("worker", "question", "left", "choice") if columns[k] not in (reader.fieldnames or [])]
        if missing:
            raise InputError(path, f"missing columns {missing} (found {reader.fieldnames})")
        for line, row in enumerate(reader, start=2):
            if row.get(columns["status"], "").strip().lower() == "rejected":
                rejected += 1
                continue
            question, left, choice = (row[columns[k]].strip() for k in ("question", "left", "choice"))
            if question not in questions:
                raise InputError(path, f"line {line}: question {question!r} is not in this study")
            if left not in ("a", "b") or choice.lower() not in ("left", "right"):
                raise InputError(path, f"line {line}: left must be a / b and the choice left / right, "
                                       f"got {left!r}, {choice!r}")
            try:
                seconds = float(row.get(columns["seconds"]) or "nan")
            except ValueError:
                raise InputError(path, f"line {line}: {columns['seconds']} is not a number") from None
            chosen = chosen_video(left, choice.lower())
            rows.append((crowd_rater(row[columns["worker"]].strip(), study.fingerprint), question, left, chosen, seconds))
    added = duplicates = 0
    for rater, question, left, chosen, seconds in rows:
        try:
            store.import_answer(rater, question, left, chosen, None if seconds != seconds else seconds, "crowd")
            added += 1
        except AlreadyAnswered:
            duplicates += 1
    return Imported(added, duplicates, rejected)

"""The preference study's database: questions, raters, what each rater was shown, and answers.

SQLAlchemy Core over SQLite by default (one file, ``results/<ds>/preference/answers.sqlite``; any
SQLAlchemy URL works). Every answer is one transaction (``engine.begin()``) on a database in
SQLite's rollback-journal mode with ``synchronous=FULL``: an answer the server acknowledged is on
disk, and a server killed mid-write leaves the file as it was before that answer.

Tables: ``meta`` (the study's fingerprint, so answers are never mixed across two versions of a
study, and the secret the server derives the names a rater's browser gets from), ``questions`` (one per pair of videos, or attention check: the real video against a broken
one), ``raters`` (an anonymous random id; a web rater's token is kept as its sha256 only),
``shown`` (which video a rater saw on the left, and when) and ``answers`` (unique per rater and
question: which video won, seconds from showing to answering).
"""

from __future__ import annotations

import contextlib
import hashlib
import secrets
import time
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from pipeline.core.errors import InputError

metadata = sa.MetaData()
meta = sa.Table("meta", metadata, sa.Column("key", sa.String, primary_key=True), sa.Column("value", sa.String))
questions = sa.Table(
    "questions", metadata,
    sa.Column("id", sa.String, primary_key=True),
    sa.Column("study", sa.String, nullable=False),  # table1 / table2 / attention
    sa.Column("length", sa.String, nullable=False),  # short / long
    sa.Column("sequence", sa.String, nullable=False),
    sa.Column("method_a", sa.String, nullable=False),  # attention: 'real'
    sa.Column("method_b", sa.String, nullable=False),  # attention: 'broken'
    sa.Column("video_a", sa.String, nullable=False),
    sa.Column("video_b", sa.String, nullable=False),
)
raters = sa.Table(
    "raters", metadata,
    sa.Column("id", sa.String, primary_key=True),
    sa.Column("token_sha256", sa.String, unique=True),  # web raters; NULL for imported ones
    sa.Column("source", sa.String, nullable=False),  # web / crowd
    sa.Column("created_at", sa.Float, nullable=False),
)
shown = sa.Table(
    "shown", metadata,
    sa.Column("rater_id", sa.String, sa.ForeignKey("raters.id"), primary_key=True),
    sa.Column("question_id", sa.String, sa.ForeignKey("questions.id"), primary_key=True),
    sa.Column("left", sa.String(1), nullable=False),  # the video shown on the left: 'a' or 'b'
    sa.Column("shown_at", sa.Float, nullable=False),
)
answers = sa.Table(
    "answers", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("rater_id", sa.String, sa.ForeignKey("raters.id"), nullable=False),
    sa.Column("question_id", sa.String, sa.ForeignKey("questions.id"), nullable=False),
    sa.Column("left", sa.String(1), nullable=False),
    sa.Column("choice", sa.String(1), nullable=False),  # the video chosen: 'a' or 'b'
    sa.Column("seconds", sa.Float),  # from being shown the pair to answering
    sa.Column("answered_at", sa.Float, nullable=False),
    sa.UniqueConstraint("rater_id", "question_id", name="one_answer_per_rater_and_question"),
    sa.CheckConstraint("choice IN ('a', 'b') AND \"left\" IN ('a', 'b')", name="sides"),
)


class AlreadyAnswered(Exception):
    """The rater answered this question before (the first answer stands)."""


def _unique_violation(err: IntegrityError) -> bool:
    """A unique or primary-key constraint (a repeat), not another integrity error."""
    text = str(err.orig).lower()
    return "unique" in text or "duplicate" in text


def _meta(db, key: str) -> str | None:
    return db.execute(sa.select(meta.c.value).where(meta.c.key == key)).scalar()


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _sqlite_pragmas(connection, _record) -> None:
    cursor = connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def is_url(path: str | Path) -> bool:
    return "://" in str(path)


def database_url(path: str | Path) -> str:
    """A file path (SQLite) or an SQLAlchemy URL as it is."""
    return str(path) if is_url(path) else f"sqlite:///{Path(path).resolve()}"


def database_exists(path: str | Path) -> bool:
    """Whether there may be answers there: an existing file, or any URL (a server database)."""
    return is_url(path) or Path(path).is_file()


class Store:
    """The database of one study. ``Store.open(url, study)`` creates the tables and loads the
    study's questions on first use; a database made for another study (a different fingerprint)
    is refused, so a re-prepared study never mixes with old answers."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    @classmethod
    def open(cls, url: str | Path, study=None) -> "Store":
        url = database_url(url)
        engine = sa.create_engine(url)
        if engine.dialect.name == "sqlite":
            sa.event.listen(engine, "connect", _sqlite_pragmas)
        store = cls(engine)
        metadata.create_all(engine)
        if study is not None:
            store._load(study, url)
        return store

    def _load(self, study, url: str) -> None:
        with self.engine.begin() as db:
            found = _meta(db, "fingerprint")
            if found is None:
                db.execute(meta.insert(), [{"key": "fingerprint", "value": study.fingerprint},
                                           {"key": "dataset", "value": study.dataset}])
                db.execute(questions.insert(), [q.row() for q in study.questions])
            elif found != study.fingerprint:
                raise InputError(url, f"holds answers to another version of the study (fingerprint {found[:12]}, "
                                      f"the study is {study.fingerprint[:12]}): move it away to start a new one")
            if _meta(db, "secret") is None:  # a new database, or one made before the secret
                db.execute(meta.insert().values(key="secret", value=secrets.token_hex(32)))

    def fingerprint(self) -> str | None:
        """The fingerprint of the study this database belongs to (None: a new database)."""
        with self.engine.connect() as db:
            return _meta(db, "fingerprint")

    def secret(self) -> str:
        """The study's random secret (made with the database, kept with its answers, never sent): the
        server derives the question and video names a rater's browser gets from it."""
        with self.engine.connect() as db:
            return _meta(db, "secret")

    def close(self) -> None:
        self.engine.dispose()

    # raters
    def new_rater(self, source: str = "web") -> tuple[str, str]:
        """A new anonymous rater: (its id, its secret token)."""
        rater, token = secrets.token_hex(8), secrets.token_urlsafe(24)
        with self.engine.begin() as db:
            db.execute(raters.insert().values(id=rater, token_sha256=hash_token(token), source=source,
                                              created_at=time.time()))
        return rater, token

    def rater_of(self, token: str) -> str | None:
        with self.engine.connect() as db:
            return db.execute(sa.select(raters.c.id).where(raters.c.token_sha256 == hash_token(token))).scalar()

    def ensure_rater(self, db, rater: str, source: str) -> None:
        if db.execute(sa.select(raters.c.id).where(raters.c.id == rater)).scalar() is None:
            db.execute(raters.insert().values(id=rater, token_sha256=None, source=source, created_at=time.time()))

    # questions
    def answered(self, rater: str) -> set[str]:
        with self.engine.connect() as db:
            return set(db.execute(sa.select(answers.c.question_id).where(answers.c.rater_id == rater)).scalars())

    def show(self, rater: str, question: str, left: str) -> str:
        """Record that ``rater`` is shown ``question`` (``left``: the video on the left); a question
        shown before keeps its first side and time. Returns the side on the left."""
        try:  # insert first: two requests of one rater (two tabs) race, the first insert wins
            with self.engine.begin() as db:
                db.execute(shown.insert().values(rater_id=rater, question_id=question, left=left, shown_at=time.time()))
        except IntegrityError as err:
            if not _unique_violation(err):
                raise
        return self.shown_side(rater, question)[0]

    def shown_side(self, rater: str, question: str) -> tuple[str, float] | None:
        with self.engine.connect() as db:
            row = db.execute(sa.select(shown.c.left, shown.c.shown_at).where(
                shown.c.rater_id == rater, shown.c.question_id == question)).first()
            return tuple(row) if row else None

    def answer_click(self, rater: str, question: str, click: str) -> str:
        """A web rater's click ('left' / 'right') on a question it was shown, in one transaction:
        the chosen video follows from the side recorded by :meth:`show`; returns it. KeyError for a
        question not shown to this rater, AlreadyAnswered for a second answer."""
        from pipeline.preference.study import chosen_video

        with self._answering(question) as db:
            row = db.execute(sa.select(shown.c.left, shown.c.shown_at).where(
                shown.c.rater_id == rater, shown.c.question_id == question)).first()
            if row is None:
                raise KeyError(question)
            choice = chosen_video(row.left, click)
            db.execute(answers.insert().values(rater_id=rater, question_id=question, left=row.left, choice=choice,
                                               seconds=time.time() - row.shown_at, answered_at=time.time()))
        return choice

    def import_answer(self, rater: str, question: str, left: str, choice: str, seconds: float | None,
                      source: str) -> None:
        """An answer from elsewhere (a crowdsourcing batch), its rater created on first use, in one
        transaction; AlreadyAnswered for a second answer."""
        with self._answering(question) as db:
            self.ensure_rater(db, rater, source)
            db.execute(shown.insert().values(rater_id=rater, question_id=question, left=left, shown_at=time.time()))
            db.execute(answers.insert().values(rater_id=rater, question_id=question, left=left, choice=choice,
                                               seconds=seconds, answered_at=time.time()))

    @contextlib.contextmanager
    def _answering(self, question: str):
        try:
            with self.engine.begin() as db:
                yield db
        except IntegrityError as err:
            if not _unique_violation(err):
                raise
            raise AlreadyAnswered(question) from err

    def rows(self) -> list[dict]:
        """Every answer joined with its question: what the export scores."""
        query = sa.select(answers.c.rater_id, answers.c.question_id, answers.c.left, answers.c.choice,
                          answers.c.seconds, raters.c.source, questions.c.study, questions.c.length,
                          questions.c.sequence, questions.c.method_a, questions.c.method_b,
                          ).join(questions, answers.c.question_id == questions.c.id
                                 ).join(raters, answers.c.rater_id == raters.c.id).order_by(answers.c.id)
        with self.engine.connect() as db:
            return [dict(row._mapping) for row in db.execute(query)]

"""``python -m pipeline.preference``: the human preference study's commands.

    python -m pipeline.preference prepare --dataset demo     # results/demo/preference/study/
    python -m pipeline.preference serve --dataset demo       # http://127.0.0.1:8000/
    python -m pipeline.preference export --dataset demo      # results/demo/preference.csv (+ .json)
    python -m pipeline.preference questions --dataset demo --base-url https://example.org/study
    python -m pipeline.preference import --dataset demo --results-csv batch_results.csv

The study lives in ``<results>/<ds>/preference/study/`` (study.json and videos/, replaced whole by
``prepare``), the answers in ``<results>/<ds>/preference/answers.sqlite`` (``--db`` takes any
SQLAlchemy URL), which ``prepare`` never touches.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from pipeline.core.cli_help import cli_parser
from pipeline.core.errors import InputError, main_guard

log = logging.getLogger("pipeline.preference")


def _paths(ds, args) -> tuple[Path, str]:
    folder = ds.results / "preference"
    return Path(args.study or folder / "study"), args.db or str(folder / "answers.sqlite")


def _store(study_folder: Path, db: str):
    from pipeline.preference.store import Store, is_url
    from pipeline.preference.study import Study

    study = Study.load(study_folder)
    if not is_url(db):
        Path(db).parent.mkdir(parents=True, exist_ok=True)
    return study, Store.open(db, study)


def prepare(ds, args) -> None:
    from pipeline.preference.study import prepare as prepare_study

    folder, db = _paths(ds, args)
    synthesis = ds.results / "synth" / ds.settings.preference.ours / "synthesis.json"
    if not synthesis.is_file():
        raise InputError(synthesis, f"not found: synthesize {ds.settings.preference.ours} first")
    sequences = json.loads(synthesis.read_text())["sequences"]
    study = prepare_study(ds, sequences, folder, args.studies, answers_db=db)
    if args.sentinel:
        from pipeline.core.atomic import atomic_file

        counts = {kind: sum(q.study == kind for q in study.questions) for kind in sorted({q.study for q in study.questions})}
        with atomic_file(args.sentinel) as tmp:
            tmp.write_text(json.dumps({"study": str(folder / "study.json"), "fingerprint": study.fingerprint,
                                       "questions": counts, "videos": len(study.videos)}, indent=1))
    print(folder / "study.json", f"({len(study.questions)} questions)")


def serve(ds, args) -> None:
    from pipeline.preference.server import RATERS_PER_MINUTE
    from pipeline.preference.server import serve as serve_study

    study, store = _store(*_paths(ds, args))
    limit = RATERS_PER_MINUTE if args.raters_per_minute is None else args.raters_per_minute
    serve_study(study, store, args.host, args.port, args.threads, limit)


def export(ds, args) -> None:
    from pipeline.preference import scores
    from pipeline.preference.store import database_exists

    folder, db = _paths(ds, args)
    if not database_exists(db):
        raise InputError(db, "no answers yet: serve the study (or import a crowdsourcing batch) first")
    study, store = _store(folder, db)
    table, summary = scores.scores(store.rows(), scores.comparisons(study), any(q.attention for q in study.questions),
                                   args.keep_unchecked, args.resamples)
    if not summary["answers_counted"]:
        raise InputError(db, f"no answers to score ({summary['answers']} answers; raters dropped: "
                             f"{summary['dropped_failed_attention']} failed an attention check, "
                             f"{summary['dropped_unchecked']} answered none)")
    csv_path, json_path = scores.write(table, summary, Path(args.output or ds.results / "preference.csv"))
    log.info("%d answers from %d raters; dropped: %d failed an attention check, %d answered none",
             summary["answers"], summary["raters"], summary["dropped_failed_attention"], summary["dropped_unchecked"])
    print(scores.paper_table(table))
    print(csv_path, json_path)


def questions(ds, args) -> None:
    from pipeline.preference.crowd import questions_csv
    from pipeline.preference.study import Study

    folder, _ = _paths(ds, args)
    output = Path(args.output or ds.results / "preference" / "questions.csv")
    print(questions_csv(Study.load(folder), args.base_url, output))


def import_(ds, args) -> None:
    from pipeline.preference.crowd import import_answers

    study, store = _store(*_paths(ds, args))
    done = import_answers(study, store, args.results_csv)
    print(f"{done.added} answers added, {done.duplicates} duplicates skipped, {done.rejected} rejected assignments")


@main_guard
def main(argv: list[str] | None = None) -> None:
    from pipeline.core.cli import add_dataset_args, dataset_from_args, setup_logging

    parser = cli_parser("python -m pipeline.preference", __doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    for name, doc in [("prepare", "write the study's questions and videos"), ("serve", "run the study's web app"),
                      ("export", "preference scores with 95%% intervals"),
                      ("questions", "a CSV of questions for a crowdsourcing platform"),
                      ("import", "answers from a crowdsourcing platform's results CSV")]:
        sub = commands.add_parser(name, help=doc)
        add_dataset_args(sub)
        sub.add_argument("--study", help="the study folder (default <results>/<ds>/preference/study)")
        sub.add_argument("--db", help="the answers' database: a file or an SQLAlchemy URL "
                                      "(default <results>/<ds>/preference/answers.sqlite)")
        if name == "prepare":
            sub.add_argument("--studies", nargs="+", choices=["table1", "table2"], help="default: preference.studies")
            sub.add_argument("--sentinel", type=Path, help="a summary written once the study is complete (the rule's output)")
        if name == "serve":
            sub.add_argument("--host", default="127.0.0.1", help="default %(default)s (this machine only)")
            sub.add_argument("--port", type=int, default=8000, help="default %(default)s")
            sub.add_argument("--threads", type=int, default=8, help="waitress's worker threads (default %(default)s)")
            sub.add_argument("--raters-per-minute", type=int, help="new raters one client address may make in "
                             "a minute, more get 429 (0 = no limit; default: server.py's RATERS_PER_MINUTE, 30)")
        if name in ("export", "questions"):
            sub.add_argument("--output", help="default <results>/<ds>/preference.csv (export), "
                                              "<results>/<ds>/preference/questions.csv (questions)")
        if name == "export":
            sub.add_argument("--resamples", type=int, default=2000, help="bootstrap resamples over raters")
            sub.add_argument("--keep-unchecked", action="store_true",
                             help="count raters who answered no attention check (default: dropped)")
        if name == "questions":
            sub.add_argument("--base-url", required=True, help="where the study folder's videos/ is published")
        if name == "import":
            sub.add_argument("--results-csv", type=Path, required=True, help="the platform's results (MTurk format)")
    args = parser.parse_args(argv)
    setup_logging(args.verbose)
    ds, _ = dataset_from_args(args)
    {"prepare": prepare, "serve": serve, "export": export, "questions": questions, "import": import_}[args.command](ds, args)


if __name__ == "__main__":
    main()

"""Every command line as a user meets it first: ``--help`` says in whole sentences what the stage
does, documents each option, and offers no option the stage ignores."""

from __future__ import annotations

import argparse
import importlib
import pkgutil

import pytest

import pipeline.stages
from tests.conftest import REPO

STAGES = sorted(f"pipeline.stages.{m.name}" for m in pkgutil.iter_modules(pipeline.stages.__path__))
OTHER_CLIS = ["pipeline.preference.__main__", "pipeline.tools.fetch_weights", "pipeline.tools.gpu_slot",
              "pipeline.tools.crash_harness", "pipeline.tools.run_schema", "pipeline.tools.config_sections"]


def parser_of(module: str, monkeypatch) -> argparse.ArgumentParser:
    """The ArgumentParser a CLI's main() builds (caught as it parses)."""
    captured = []

    def capture(self, args=None, namespace=None):
        captured.append(self)
        raise SystemExit(0)

    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", capture)
    with pytest.raises(SystemExit):
        importlib.import_module(module).main([])
    return captured[0]


def parsers(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    """The parser and its subcommands' parsers."""
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return [parser] + [p for sub in subs for child in sub.choices.values() for p in parsers(child)]


def test_there_are_21_stage_clis():
    assert len(STAGES) == 21, STAGES


@pytest.mark.parametrize("module", STAGES + OTHER_CLIS)
def test_help_describes_the_cli_in_whole_sentences_and_every_option(module, monkeypatch):
    """Outside testers: 13 of 21 descriptions stopped mid-sentence (the docstring's first line),
    two heading styles, synthesize's and side_by_side's options undocumented."""
    top = parser_of(module, monkeypatch)
    if module in STAGES:
        assert top.description.startswith(f"Stage '{module.rsplit('.', 1)[1]}'"), top.description
    for parser in parsers(top):
        if parser is top or parser.description:
            assert parser.description.rstrip().endswith("."), f"{parser.prog}: {parser.description!r}"
        for action in parser._actions:
            if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)):
                continue
            assert action.help, f"{parser.prog}: {'/'.join(action.option_strings) or action.dest} has no help"


@pytest.mark.parametrize("module", STAGES)
def test_only_the_frames_stage_takes_ffmpeg(module, monkeypatch):
    """evaluate listed --ffmpeg, which it never used: only frames decodes video with the config's ffmpeg."""
    options = {o for p in parsers(parser_of(module, monkeypatch)) for a in p._actions for o in a.option_strings}
    assert ("--ffmpeg" in options) == (module == "pipeline.stages.frames"), module


def test_the_stages_page_lists_each_stage_cli():
    table = [line for line in (REPO / "docs" / "stages.md").read_text().splitlines() if line.startswith("| ")]
    missing = [m for m in STAGES if not any(f"python -m {m} " in line for line in table)]
    assert not missing, missing

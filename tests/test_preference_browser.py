"""The preference study's page in a real headless Chromium (Debian's chromium and chromium-driver:
`make setup-browser`; nothing is downloaded): the videos play, clicks become answers in the
database."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from pipeline.preference.server import Disguise, background_server
from pipeline.preference.store import Store
from tests.test_preference import make_study

CHROMIUM, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")
needs_browser = pytest.mark.skipif(
    not (CHROMIUM and DRIVER) and not os.environ.get("CI"),  # CI installs them (make test): there it must run
    reason="Debian's chromium and chromium-driver are not installed (make setup-browser)")


def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1200,700",
                     "--autoplay-policy=no-user-gesture-required", "--disable-gpu"):
        options.add_argument(argument)
    return webdriver.Chrome(service=Service(DRIVER), options=options)  # the given driver: no Selenium Manager


def answer_in_browser(url: str, clicks: list[str], screenshot: Path | None = None) -> list[str]:
    """Open the study at ``url``, click the left / right button for each entry of ``clicks`` once
    the pair plays; returns the question ids answered (a screenshot of the first pair if asked)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ready
    from selenium.webdriver.support.ui import WebDriverWait

    driver = browser()
    answered = []
    try:
        driver.get(url)
        wait = WebDriverWait(driver, 30)
        for index, side in enumerate(clicks):
            wait.until(lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-question")
                       not in (None, *answered))
            wait.until(ready.element_to_be_clickable((By.ID, f"choose-{side}")))
            playing = driver.execute_script(
                "return ['left', 'right'].map(id => document.getElementById(id))"
                ".map(v => [v.readyState, v.videoWidth, v.paused])")
            assert all(state >= 3 and width > 0 for state, width, _ in playing), playing
            if index == 0 and screenshot:
                driver.save_screenshot(str(screenshot))
            answered.append(driver.find_element(By.TAG_NAME, "body").get_attribute("data-question"))
            driver.find_element(By.ID, f"choose-{side}").click()
        wait.until(lambda d: d.find_element(By.ID, "progress").text.startswith(f"Question {len(clicks) + 1}")
                   or d.find_element(By.ID, "done").is_displayed())
    finally:
        driver.quit()
    return answered


@needs_browser
def test_clicks_in_a_real_browser_become_answers_in_the_database(tmp_path):
    study = make_study(tmp_path / "study", pairs=3)  # a rater's 3 questions: the check, seq1's and seq2's pair
    store = Store.open(tmp_path / "answers.sqlite", study)
    with background_server(study, store) as url:
        answered = answer_in_browser(url, ["left", "right", "left"], tmp_path / "page.png")
    rows = store.rows()
    disguise = Disguise(store.secret())
    assert [disguise.question(r["question_id"]) for r in rows] == answered and len(set(answered)) == 3
    assert len({r["rater_id"] for r in rows}) == 1 and rows[0]["source"] == "web"
    for row, side in zip(rows, ["left", "right", "left"]):  # the click, mapped through the shown sides
        assert row["choice"] == (row["left"] if side == "left" else {"a": "b", "b": "a"}[row["left"]])
    assert (tmp_path / "page.png").stat().st_size > 10_000
    store.close()

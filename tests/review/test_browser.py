"""The review page and the dashboard in a real browser: Debian's headless Chromium and
chromium-driver, driven by Selenium (which downloads nothing: the driver's path is
given and Selenium Manager is off). Every wait is for a state of the page, never a time.

Screenshots go to ``$GRADER_REVIEW_SHOTS`` when set (else the test's temporary folder).
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from grader.overrides import OVERRIDES_FILE, load_overrides
from grader.review.app import ReviewSession, Server, bind

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
WAIT_S = 60  # an upper bound for a page state to appear, not a pace

pytestmark = pytest.mark.skipif(
    not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()),
    reason="needs Debian's chromium and chromium-driver (scripts/install.sh installs them)",
)

if Path(CHROMEDRIVER).exists():  # imported only where it can run
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import Select, WebDriverWait


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[webdriver.Chrome]:
    os.environ["SE_OFFLINE"] = "true"  # Selenium Manager must not reach the network
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1280,1000",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("GRADER_REVIEW_SHOTS") or tmp_path / "shots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def wait(driver: webdriver.Chrome) -> WebDriverWait[webdriver.Chrome]:
    return WebDriverWait(driver, WAIT_S)


def progress_is(driver: webdriver.Chrome, text: str) -> None:
    wait(driver).until(ec.text_to_be_present_in_element((By.ID, "progress"), text))


def pdf_text(path: Path) -> str:
    done = subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return " ".join(done.stdout.split())


def test_mark_three_answers_and_a_regrade_in_the_browser(
    out: Path, browser: webdriver.Chrome, shots: Path
) -> None:
    session = ReviewSession(out, "jdoe")
    server = Server(session, bind(0))
    server.start()
    try:
        d = browser
        d.get(server.url)
        wait(d).until(ec.presence_of_element_located((By.ID, "queues")))
        assert "token=" not in d.current_url  # traded for a cookie
        d.save_screenshot(str(shots / "queue.png"))
        d.find_element(By.LINK_TEXT, "Q1a").click()
        progress_is(d, "Answer 1 of 3 · 3 still to mark")
        body = d.find_element(By.TAG_NAME, "body")

        # 1: accept the suggestion with one key
        body.send_keys("a")
        progress_is(d, "Answer 2 of 3 · 2 still to mark")
        # 2: type a mark (a digit jumps to the mark field), Enter saves
        d.find_element(By.TAG_NAME, "body").send_keys("1")
        d.switch_to.active_element.send_keys(".5", Keys.ENTER)
        progress_is(d, "Answer 3 of 3 · 1 still to mark")
        # 3: a mark and a comment, Ctrl+Enter saves
        d.find_element(By.TAG_NAME, "body").send_keys("2")
        d.switch_to.active_element.send_keys(Keys.ESCAPE)
        d.find_element(By.TAG_NAME, "body").send_keys("c")
        d.switch_to.active_element.send_keys("Say how you would detect it.")
        d.save_screenshot(str(shots / "marking.png"))
        d.switch_to.active_element.send_keys(Keys.CONTROL, Keys.ENTER)
        wait(d).until(ec.presence_of_element_located((By.ID, "queue-done")))

        # the comment is in Q1a's comment bank on the next visit
        d.find_element(By.LINK_TEXT, "Answer #3").click()
        wait(d).until(ec.presence_of_element_located((By.ID, "bank-1")))
        assert d.find_element(By.ID, "bank-1").text.endswith("Say how you would detect it.")

        # a regrade: filed in the page, then resolved with a changed mark
        d.find_element(By.ID, "nav-regrades").click()
        wait(d).until(ec.presence_of_element_located((By.ID, "file-form")))
        Select(d.find_element(By.ID, "file-student")).select_by_value("solution")
        Select(d.find_element(By.ID, "file-check")).select_by_value("Q1a")
        d.find_element(By.ID, "file-reason").send_keys("My second sentence names the loss curve.")
        d.find_element(By.ID, "file-submit").click()
        wait(d).until(ec.presence_of_element_located((By.ID, "regrade-1")))
        d.find_element(By.ID, "resolve-points-1").send_keys("2.5")
        d.find_element(By.ID, "resolve-comment-1").send_keys("Detection is there.")
        d.save_screenshot(str(shots / "regrades.png"))
        d.find_element(By.ID, "resolve-1").click()
        wait(d).until(ec.text_to_be_present_in_element((By.ID, "resolved-1"), "changed"))

        d.find_element(By.ID, "nav-dashboard").click()
        wait(d).until(ec.text_to_be_present_in_element((By.ID, "n-unreviewed"), "21 answers"))
        d.save_screenshot(str(shots / "dashboard.png"))
        assert session.renderer.wait_idle(300)
        assert session.renderer.error is None
    finally:
        server.stop()

    entries = {(o.student, o.check): o for o in load_overrides(out / OVERRIDES_FILE)}
    assert sorted(entries) == [("ansari_seed", "Q1a"), ("crash_in_cell", "Q1a"),
                               ("solution", "Q1a")]  # fmt: skip
    accepted = entries["ansari_seed", "Q1a"]
    assert (accepted.points, accepted.previous, accepted.why, accepted.who) == (
        3.0, 3.0, "accepted suggestion", "jdoe",
    )  # fmt: skip
    typed = entries["crash_in_cell", "Q1a"]
    assert (typed.points, typed.previous, typed.why, typed.comment) == (1.5, 3.0, "marked", "")
    regraded = entries["solution", "Q1a"]
    assert (regraded.points, regraded.previous, regraded.why, regraded.comment) == (
        2.5, 2.0, "regrade 1: Detection is there.", "Detection is there.",
    )  # fmt: skip
    assert [(h.points, h.comment, h.why) for h in regraded.history] == [
        (2.0, "Say how you would detect it.", "marked")
    ]

    review = json.loads((out / "results" / "solution.json").read_text())["review"]
    assert [(m["points"], m["why"]) for m in review["marks"]] == [
        (2.0, "marked"), (2.5, "regrade 1: Detection is there."),
    ]  # fmt: skip
    assert [(r["outcome"], r["points_before"], r["points_after"]) for r in review["regrades"]] == [
        ("changed", 2.0, 2.5)
    ]

    gradebook = {r["student"]: r for r in csv.DictReader((out / "gradebook.csv").open())}
    automatic = {
        s: json.loads((out / "results" / f"{s}.json").read_text())["score"]
        for s in ("ansari_seed", "crash_in_cell", "solution")
    }
    assert float(gradebook["ansari_seed"]["total"]) == pytest.approx(automatic["ansari_seed"])
    assert float(gradebook["crash_in_cell"]["total"]) == pytest.approx(
        automatic["crash_in_cell"] - 1.5
    )
    assert float(gradebook["solution"]["total"]) == pytest.approx(automatic["solution"] - 0.5)

    text = pdf_text(out / "reports" / "solution.pdf")
    q1a = text[text.index("Q1a written answer") : text.index("Q1b written answer")]
    assert "marked by the instructor: 2.5/3" in q1a
    assert "Instructor: 2.5 / 3 (suggested mark 3) — Detection is there." in q1a
    assert "awaiting" not in q1a.lower()
    assert "7 written answers (17 points) are awaiting instructor review" in text  # Q1b…Q6d
    accepted_pdf = pdf_text(out / "reports" / "ansari_seed.pdf")
    q1a = accepted_pdf[
        accepted_pdf.index("Q1a written answer") : accepted_pdf.index("Q1b written answer")
    ]
    assert "Instructor: 3 / 3 (suggested mark 3)" in q1a and "awaiting" not in q1a.lower()


def test_the_offline_dashboard_sorts_and_filters(
    out: Path, browser: webdriver.Chrome, shots: Path
) -> None:
    d = browser
    d.get((out / "index.html").as_uri())
    wait(d).until(ec.text_to_be_present_in_element((By.ID, "shown"), "3 of 3 students shown"))

    def order() -> list[str]:
        cells = d.find_elements(By.CSS_SELECTOR, "#students-body tr:not([hidden]) td.sid")
        return [c.text for c in cells]

    totals = {s: json.loads((out / "results" / f"{s}.json").read_text())["score"]
              for s in ("ansari_seed", "crash_in_cell", "solution")}  # fmt: skip
    header = d.find_element(By.CSS_SELECTOR, 'th[data-key="total"]')
    header.click()  # highest first
    wait(d).until(lambda _: "sorted-desc" in (header.get_attribute("class") or ""))
    assert order() == sorted(totals, key=lambda s: (-totals[s], s))
    header.click()
    wait(d).until(lambda _: "sorted-asc" in (header.get_attribute("class") or ""))
    assert order() == sorted(totals, key=lambda s: (totals[s], s))
    d.find_element(By.ID, "filter").send_keys("crash")
    wait(d).until(ec.text_to_be_present_in_element((By.ID, "shown"), "1 of 3 students shown"))
    assert order() == ["crash_in_cell"]
    d.save_screenshot(str(shots / "dashboard-offline.png"))
    shutil.rmtree(out / "results")  # the page needs nothing but itself
    d.refresh()
    wait(d).until(ec.text_to_be_present_in_element((By.ID, "shown"), "3 of 3 students shown"))


def test_mark_a_group_of_similar_answers_in_one_decision(
    klass: Path, browser: webdriver.Chrome, shots: Path
) -> None:
    from grader.review.learn import Learner
    from grader.rubric import load_rubric
    from tests.review.conftest import BagOfWords

    learner = Learner.for_rubric(load_rubric("hw3"), encoder=BagOfWords())
    session = ReviewSession(klass, "jdoe", learner=learner)
    server = Server(session, bind(0))
    server.start()
    try:
        d = browser
        d.get(server.url)
        wait(d).until(ec.presence_of_element_located((By.ID, "queues")))
        leader = next(n for n, i in enumerate(session.queues()["Q1a"]) if i.group is not None)
        d.get(f"http://127.0.0.1:{server.port}/queue/Q1a?i={leader}")
        wait(d).until(ec.text_to_be_present_in_element((By.ID, "group"), "3 similar answers"))
        assert d.find_element(By.ID, "whole-group").is_selected()
        d.save_screenshot(str(shots / "group.png"))
        d.find_element(By.TAG_NAME, "body").send_keys("2")
        d.switch_to.active_element.send_keys(Keys.ENTER)
        progress_is(d, "7 still to mark")
    finally:
        session.renderer.wait_idle(300)
        server.stop()
    entries = load_overrides(klass / OVERRIDES_FILE)
    assert sorted(o.student for o in entries) == ["s01", "s02", "s03"]
    assert {(o.points, o.who, o.why) for o in entries} == {(2.0, "jdoe", "marked as group of 3")}

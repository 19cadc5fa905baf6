"""The review app over HTTP: token on every request, Host checked, security headers,
no path mapped to a file, anonymous queues, escaped answers, decisions saved at once."""

from __future__ import annotations

import csv
import http.client
import json
import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode

import pytest

from grader.overrides import OVERRIDES_FILE, load_overrides
from grader.review.app import ReviewSession, Server, bind

EVIL = '<script>alert("answer")</script><img src=x onerror=alert(1)>'


class Client:
    """A tiny HTTP client for the server: a fresh connection per request."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.cookie = ""

    def request(
        self,
        method: str,
        path: str,
        *,
        form: dict[str, str] | None = None,
        host: str | None = None,
        cookie: bool = True,
    ) -> tuple[int, dict[str, str], str]:
        conn = http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=60)
        headers = {"Host": host if host is not None else f"127.0.0.1:{self.server.port}"}
        if cookie and self.cookie:
            headers["Cookie"] = self.cookie
        body = None
        if form is not None:
            body = urlencode(form)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        data = response.read().decode("utf-8", "replace")
        conn.close()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, data

    def login(self) -> None:
        status, headers, _ = self.request("GET", f"/?token={self.server.session.token}")
        assert status == 303 and headers["location"] == "/"
        assert "HttpOnly" in headers["set-cookie"] and "SameSite=strict" in headers["set-cookie"]
        self.cookie = headers["set-cookie"].split(";")[0]


@pytest.fixture
def served(out: Path) -> Iterator[tuple[Server, Client]]:
    server = Server(ReviewSession(out, "jdoe"), bind(0))
    server.start()
    client = Client(server)
    yield server, client
    server.session.renderer.wait_idle(300)
    server.stop()


#: Paths that would reach a file if any path were mapped to one.
NOT_FILES = [
    "/results/solution.json",
    "/overrides.yaml",
    "/static/x",
    "/index.html",
    "/report/..%2Fbatch.json",
    "/report/%2Fetc%2Fpasswd",
    "/../../etc/passwd",
]
PATHS = ["/", "/queue/Q1a", "/regrades", "/dashboard", "/status", "/report/solution"]


@pytest.mark.parametrize("path", PATHS)
def test_every_read_needs_the_token(served: tuple[Server, Client], path: str) -> None:
    _, client = served
    status, headers, body = client.request("GET", path)
    assert status == 403 and "token" in body
    assert headers["referrer-policy"] == "no-referrer"
    status, _, _ = client.request("GET", path + ("&" if "?" in path else "?") + "token=wrong")
    assert status == 403


def test_writes_need_the_form_token_too(served: tuple[Server, Client], out: Path) -> None:
    _, client = served
    status, _, _ = client.request("POST", "/regrades/file", form={"student": "solution",
                                  "check": "Q1a", "reason": "x"})  # fmt: skip
    assert status == 403  # no cookie, no token
    client.login()
    status, _, body = client.request("POST", "/regrades/file", form={"student": "solution",
                                     "check": "Q1a", "reason": "x"})  # fmt: skip
    assert status == 403 and "form's token" in body  # the cookie alone is not enough
    assert not (out / "regrades.yaml").exists()


@pytest.mark.parametrize("host", ["evil.example", "evil.example:80", "127.0.0.1:1", ""])
def test_a_foreign_host_header_is_refused(served: tuple[Server, Client], host: str) -> None:
    server, client = served
    status, _, _ = client.request("GET", f"/?token={server.session.token}", host=host)
    assert status == 400


def test_security_headers_and_no_file_behind_any_path(served: tuple[Server, Client]) -> None:
    _, client = served
    client.login()
    status, headers, body = client.request("GET", "/")
    assert status == 200
    policy = headers["content-security-policy"]
    assert policy.startswith("default-src 'none'; script-src 'sha256-")
    assert "'unsafe-inline'" not in policy and "'unsafe-eval'" not in policy
    assert (headers["referrer-policy"], headers["x-content-type-options"]) == (
        "no-referrer", "nosniff",
    )  # fmt: skip
    assert '<meta name="referrer" content="no-referrer">' in body
    for path in NOT_FILES:
        status, _, text = client.request("GET", path)
        assert status == 404, path
        assert "root:" not in text and "schema_version" not in text


def test_queues_are_anonymous_until_ids_are_revealed(served: tuple[Server, Client]) -> None:
    _, client = served
    client.login()
    for path in ["/", "/queue/Q1a", "/queue/Q1a?i=1", "/queue/Q6b?i=2"]:
        _, _, body = client.request("GET", path)
        for student in ("ansari_seed", "crash_in_cell", "solution"):
            assert student not in body, (path, student)
    _, _, body = client.request("GET", "/queue/Q1a?i=2&reveal=1")
    assert '<span id="student-id">solution</span>' in body
    _, _, body = client.request("GET", "/dashboard")  # the dashboard keeps ids
    assert '<td class="sid">solution</td>' in body


def test_student_text_is_shown_escaped(out: Path) -> None:
    path = out / "results" / "solution.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    q1a = next(c for q in data["questions"] for c in q["checks"] if c["id"] == "Q1a")
    q1a["details"]["answer"] = EVIL
    path.write_text(json.dumps(data), encoding="utf-8")
    server = Server(ReviewSession(out, "jdoe"), bind(0))
    server.start()
    try:
        client = Client(server)
        client.login()
        _, _, body = client.request("GET", "/queue/Q1a?i=2")
    finally:
        server.stop()
    assert "<script>alert" not in body and "<img src=x" not in body
    assert "&lt;script&gt;alert(&#34;answer&#34;)&lt;/script&gt;&lt;img src=x" in body
    assert re.findall(r"<script[^>]*>", body) == ["<script>"]  # the page's own, only


def test_a_decision_is_saved_at_once(served: tuple[Server, Client], out: Path) -> None:
    server, client = served
    client.login()
    _, _, page = client.request("GET", "/queue/Q1a")
    key = re.search(r'name="key" value="(\w+)"', page)[1]  # type: ignore[index]
    form = {"token": server.session.token, "key": key, "i": "0", "action": "save",
            "points": "2", "comment": "Detection is vague."}  # fmt: skip
    status, headers, _ = client.request("POST", "/queue/Q1a/mark", form=form)
    assert (status, headers["location"]) == (303, "/queue/Q1a?i=1")
    [entry] = load_overrides(out / OVERRIDES_FILE)
    assert (entry.student, entry.check, entry.points, entry.who, entry.previous, entry.why) == (
        "ansari_seed", "Q1a", 2.0, "jdoe", 3.0, "marked",
    )  # fmt: skip
    rows = {r["student"]: r for r in csv.DictReader((out / "gradebook.csv").open())}
    before = json.loads((out / "results" / "ansari_seed.json").read_text())["score"]
    assert float(rows["ansari_seed"]["total"]) == pytest.approx(before - 1)
    review = json.loads((out / "results" / "ansari_seed.json").read_text())["review"]
    assert review["marks"][0]["comment"] == "Detection is vague."
    # a mark out of range is refused with the reason, and nothing is written
    form.update(points="7", key=key)
    status, _, body = client.request("POST", "/queue/Q1a/mark", form=form)
    assert status == 400 and "from 0 to 3" in body
    assert load_overrides(out / OVERRIDES_FILE)[0].points == 2.0

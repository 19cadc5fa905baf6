"""``grade review OUT``: the instructor's review page, a local web app (Starlette + uvicorn).

What it serves, all rendered from ``OUT`` on each request:

* ``/`` — the queues, one per check awaiting review, with what is left to mark;
* ``/queue/<check>?i=N`` — one answer at a time, anonymous unless ``reveal=1``: the
  prompt, the answer (escaped text), the concepts found, the suggested mark, the
  check's comment bank; ``POST /queue/<check>/mark`` records a decision (for a whole
  group of similar answers with ``whole_group=1``), ``POST /queue/<check>/ungroup``
  takes an answer out of its group; with a :class:`~grader.review.learn.Learner` the
  suggestions learn from the marks (see :mod:`grader.review.learn`);
* ``/regrades`` — regrade requests: file one, resolve one with a logged outcome;
* ``/dashboard`` — the batch dashboard (:mod:`grader.review.dashboard`), live;
* ``/report/<student>`` — a student's PDF, looked up by student id (never by path);
* ``/status`` — ``{"rendering": bool, "render_error": str|null}`` (``?wait=1`` answers
  once the background renders are done).

Every decision is saved at once: ``overrides.yaml`` (under its lock, with who, when,
previous and why), the result's ``review`` section, ``gradebook.csv`` and ``index.html``;
the PDFs re-render in a background thread (:class:`Renderer`).

Security: bound to 127.0.0.1 only; a random token, printed in the URL, is required on
every request (the first request trades it for an HttpOnly, SameSite=Strict cookie and
redirects to the same page without it; forms also carry it); the Host header must be
``127.0.0.1:PORT`` or ``localhost:PORT`` (no DNS rebinding); every response has a strict
Content-Security-Policy (only the pages' own inline script and style, by hash),
``Referrer-Policy: no-referrer`` and ``nosniff``; no request path is ever mapped to a
file; student text is escaped by Jinja's autoescape and figures are PNG/JPEG ``data:``
URIs only. Started as root, :func:`serve` binds its socket and then drops to an
unprivileged user (``--user``, else the owner of ``OUT``) before serving anything.
"""

from __future__ import annotations

import os
import pwd
import secrets
import socket
import subprocess
import sys
import tempfile
import threading
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlencode

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.requests import Request
from starlette.responses import (
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
)
from starlette.routing import Route

from grader.errors import GraderError
from grader.models import GradeRecord
from grader.overrides import OVERRIDES_FILE, OverridesError, load_overrides, save_override
from grader.review import audit, dashboard
from grader.review.learn import Learner, rubric_of
from grader.review.queue import Item, Order, build_queues, pseudonym, student_order

COOKIE_PREFIX = "grader_review_"
#: Form fields and bodies larger than this are refused (a comment is a few lines).
MAX_BODY = 256 * 1024


def login_name() -> str:
    """The default ``--as``: the user who ran the command (through sudo too)."""
    import getpass

    return os.environ.get("SUDO_USER") or getpass.getuser()


# ------------------------------------------------------------------- background renders


class Renderer:
    """Re-renders reports in the background: ``submit()`` returns at once; a thread runs
    rounds of ``python -m grader.review.render OUT`` (a child process, so laying out
    PDFs never slows the page), each covering every request made before it started;
    requests made during a round are covered by the next one. ``wait_idle()`` waits
    until nothing is left."""

    def __init__(self, out_dir: Path) -> None:
        self.out_dir = out_dir
        self._cond = threading.Condition()
        self._wanted = 0  # rounds asked for
        self._done = 0  # rounds finished (a round covers every request made before it)
        self._thread: threading.Thread | None = None
        self.error: str | None = None
        self.rendered = 0

    def submit(self) -> None:
        """Ask for a round of rendering."""
        with self._cond:
            self._wanted += 1
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="review-render", daemon=True)
                self._thread.start()
            self._cond.notify_all()

    @property
    def busy(self) -> bool:
        """Whether a round is asked for or running."""
        with self._cond:
            return self._done < self._wanted

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Wait until every round asked for so far is finished; False on timeout."""
        with self._cond:
            target = self._wanted
            return self._cond.wait_for(lambda: self._done >= target, timeout)

    def _round(self) -> None:
        done = subprocess.run(
            [sys.executable, "-m", "grader.review.render", str(self.out_dir)],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or ["no output"])[-1]
            raise GraderError(f"exit code {done.returncode}: {last}")
        self.rendered += int(done.stdout.strip().splitlines()[-1])

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._done < self._wanted)
                target = self._wanted
            try:
                self._round()
                self.error = None
            except Exception as exc:  # shown on every page until a round succeeds
                self.error = f"{type(exc).__name__}: {exc}"
            with self._cond:
                self._done = target
                self._cond.notify_all()


# ------------------------------------------------------------------- the session


class ReviewSession:
    """One review of one output folder by one instructor: reads ``OUT`` afresh for
    every page and writes every decision at once (see the module's docstring)."""

    def __init__(
        self,
        out_dir: Path,
        who: str,
        *,
        order: Order | None = None,
        learner: Learner | None = None,
        note: str | None = None,
    ) -> None:
        """``learner`` (suggestions that learn from the marks, and groups) is also the
        order unless ``order`` is given; ``note`` is shown on the queue pages (e.g. why
        suggestions do not learn)."""
        from grader.results import RESULTS_DIR

        self.out_dir = Path(out_dir)
        if not (self.out_dir / RESULTS_DIR).is_dir():
            raise GraderError(f"{self.out_dir}: no results/ folder (run `grade` on it first)")
        self.who = who
        self.learner = learner
        self.order: Order = order or learner or student_order
        self.note = note
        self.secret = secrets.token_bytes(32)
        self.token = secrets.token_urlsafe(32)
        self.lock = threading.RLock()  # decisions of concurrent requests, one at a time
        self.renderer = Renderer(self.out_dir)
        self._raw: tuple[tuple[tuple[str, int, int, int], ...], list[GradeRecord]] | None = None
        self.records()  # a broken folder fails now, not on the first page

    def records(self) -> list[GradeRecord]:
        """The results with ``overrides.yaml`` applied (the files are read again only
        when one of them changed)."""
        from grader.overrides import with_overrides
        from grader.results import RESULTS_DIR, read_results

        results = self.out_dir / RESULTS_DIR
        identity = tuple(
            (p.name, st.st_ino, st.st_mtime_ns, st.st_size)
            for p in sorted(results.glob("*.json"))
            for st in (p.stat(),)
        )
        if self._raw is None or self._raw[0] != identity:
            self._raw = (identity, read_results(results))
        records = self._raw[1]
        if not records:
            raise GraderError(f"{results}: holds no results")
        return with_overrides(records, self.out_dir / OVERRIDES_FILE)

    def queues(
        self, records: Sequence[GradeRecord] | None = None, *, ordered: bool = True
    ) -> dict[str, list[Item]]:
        """Every check's queue (overrides applied), in the session's order (``ordered``)
        or by student (cheap: for counting)."""
        records = self.records() if records is None else records
        return build_queues(records, self.order if ordered else student_order)

    def queue(self, check: str, records: Sequence[GradeRecord] | None = None) -> list[Item]:
        """One check's queue in the session's order (only this check's order is
        computed); empty when nothing of ``check`` awaits review."""
        items = self.queues(records, ordered=False).get(check)
        return list(self.order(items)) if items else []

    def prepare(self) -> None:
        """Compute the learning queues ahead of the first visit (loads the model and
        embeds every answer); run in a background thread by :func:`serve`."""
        if self.learner is None:
            return
        records = self.records()
        for check in self.learner.specs:
            self.queue(check, records)

    def comment_bank(self, check: str) -> list[str]:
        """The comments already given for ``check``, most used first."""
        path = self.out_dir / OVERRIDES_FILE
        if not path.is_file():
            return []
        counts: dict[str, int] = {}
        for o in load_overrides(path):
            if o.check == check and o.comment:
                counts[o.comment] = counts.get(o.comment, 0) + 1
        return sorted(counts, key=lambda c: (-counts[c], c))

    def mark(self, item: Item, points: float, comment: str, why: str) -> None:
        """Record a decision on ``item`` and bring every output up to date."""
        if not 0 <= points <= item.max_score + 1e-9:
            raise OverridesError(
                f"a mark for {item.check} must be between 0 and {item.max_score:g}, got {points:g}"
            )
        with self.lock:
            self._save(item, points, comment, why)
            self.refresh([item.student])

    def _save(self, item: Item, points: float, comment: str, why: str) -> None:
        """One audited entry in ``overrides.yaml`` (under the session's lock)."""
        save_override(
            self.out_dir / OVERRIDES_FILE,
            student=item.student,
            check=item.check,
            points=points,
            comment=comment,
            who=self.who,
            why=why,
            previous=item.mark if item.mark is not None else item.suggested,
        )

    def mark_group(self, items: Sequence[Item], points: float, comment: str, why: str) -> None:
        """Record one decision for every answer of a group: each gets its own entry in
        ``overrides.yaml`` (its own previous mark), ``why`` saying the group's size."""
        top = min(i.max_score for i in items)
        if not 0 <= points <= top + 1e-9:
            raise OverridesError(f"a mark for this group must be between 0 and {top:g}")
        why = f"{why + ', ' if why != 'marked' else ''}marked as group of {len(items)}"
        with self.lock:
            for item in items:
                self._save(item, points, comment, why)
            self.refresh([i.student for i in items])

    def ungroup(self, item: Item) -> None:
        """Take ``item`` out of its group of similar answers (for this session)."""
        if self.learner is not None:
            self.learner.ungroup(item.check, item.student)

    def file_regrade(self, student: str, check: str, reason: str) -> audit.Regrade:
        """File a regrade request (see :func:`grader.review.audit.file_regrade`)."""
        with self.lock:
            regrade = audit.file_regrade(
                self.out_dir, self.records(), student, check, reason, self.who
            )
            self.refresh([student], render=False)
        return regrade

    def resolve_regrade(self, rid: int, points: float | None, comment: str) -> audit.Regrade:
        """Resolve a regrade request (see :func:`grader.review.audit.resolve_regrade`)."""
        with self.lock:
            done = audit.resolve_regrade(
                self.out_dir, self.records(), rid, self.who, points=points, comment=comment
            )
            self.refresh([done.student])
        return done

    def refresh(self, students: Sequence[str], *, render: bool = True) -> None:
        """After a decision: the students' review sections, the gradebook and the
        dashboard now; the reports in the background."""
        refresh_outputs(self.out_dir, students, load=self.records)
        if render:
            self.renderer.submit()


def refresh_outputs(
    out_dir: Path,
    students: Sequence[str] | None = None,
    *,
    load: Callable[[], list[GradeRecord]] | None = None,
) -> list[GradeRecord]:
    """Bring ``OUT`` up to date with ``overrides.yaml`` and ``regrades.yaml`` (all but
    the PDFs): the review sections of ``students`` (all when None), ``gradebook.csv``
    and ``index.html``; returns the records with the overrides applied (read by
    ``load`` when given)."""
    from grader.gradebook import write_gradebook
    from grader.overrides import with_overrides
    from grader.results import RESULTS_DIR, read_results

    audit.sync_review_sections(out_dir, students)
    if load is not None:
        records = load()
    else:
        records = with_overrides(read_results(out_dir / RESULTS_DIR), out_dir / OVERRIDES_FILE)
    write_gradebook(records, out_dir / "gradebook.csv")
    dashboard.write_dashboard(out_dir, records)
    return records


# ------------------------------------------------------------------- the web app


@dataclass(frozen=True)
class Page:
    """What every page shares: the CSP and the assets it allows."""

    script: str
    style: str
    csp: str


def _page() -> Page:
    script, style = dashboard.asset("review.js"), dashboard.asset("review.css")
    return Page(script, style, dashboard.content_security_policy([script], [style]))


def _headers(csp: str) -> dict[str, str]:
    return {
        "Content-Security-Policy": csp,
        "Referrer-Policy": "no-referrer",
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": "DENY",
        "Cache-Control": "no-store",
        "Cross-Origin-Opener-Policy": "same-origin",
        "Cross-Origin-Resource-Policy": "same-origin",
    }


class Guard(BaseHTTPMiddleware):
    """The Host check and the token check of every request, and the security headers
    of every response."""

    def __init__(self, app: Any, session: ReviewSession, port: int) -> None:
        super().__init__(app)
        self.session = session
        self.hosts = {f"127.0.0.1:{port}", f"localhost:{port}"}
        self.cookie = f"{COOKIE_PREFIX}{port}"
        # every page's policy, in the header too (a page's meta tag narrows it further)
        self.csp = dashboard.content_security_policy(
            [dashboard.asset("review.js"), dashboard.asset("dashboard.js")],
            [dashboard.asset("review.css")],
        )

    async def dispatch(
        self, request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        """Refuse a foreign Host (400) or a missing or wrong token (403)."""
        response = await self._checked(request, call_next)
        for name, value in _headers(self.csp).items():
            response.headers.setdefault(name, value)
        return response

    async def _checked(
        self, request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        if request.headers.get("host", "") not in self.hosts:
            return PlainTextResponse("unexpected Host header", status_code=400)
        given = request.query_params.get("token")
        token = self.session.token
        if given is not None:
            if not secrets.compare_digest(given.encode(), token.encode()):
                return PlainTextResponse("wrong token: use the URL grade review printed", 403)
            if request.method == "GET":
                # trade the token in the URL for a cookie, and drop it from the address bar
                rest = [(k, v) for k, v in request.query_params.multi_items() if k != "token"]
                url = request.url.path + ("?" + urlencode(rest) if rest else "")
                response = RedirectResponse(url, status_code=303)
                response.set_cookie(self.cookie, token, httponly=True, samesite="strict", path="/")
                return response
            return await call_next(request)
        cookie = request.cookies.get(self.cookie, "")
        if not secrets.compare_digest(cookie.encode(), token.encode()):
            return PlainTextResponse(
                "this page needs the token: open the URL grade review printed", 403
            )
        return await call_next(request)


def create_app(session: ReviewSession, port: int) -> Starlette:
    """The review app for ``session``, served at ``127.0.0.1:port``."""
    page = _page()
    env = dashboard.env()

    def render(template: str, status: int = 200, **context: Any) -> HTMLResponse:
        audits = audit.load_regrades(session.out_dir / audit.REGRADES_FILE)
        records = context.pop("records", None)
        title = ""
        if records:
            title = records[0].title or records[0].assignment
        error = context.pop("error", None) or (
            f"report rendering failed: {session.renderer.error}" if session.renderer.error else None
        )
        if error is None and session.learner is not None and session.learner.error:
            error = session.learner.error
        html = env.get_template(template).render(
            csp=page.csp,
            script=page.script,
            style=page.style,
            who=session.who,
            title=title,
            n_open=sum(1 for r in audits if r.status == "open"),
            render_state="re-rendering reports…" if session.renderer.busy else "",
            token=session.token,
            error=error,
            notice=context.pop("notice", None) or session.note,
            **context,
        )
        return HTMLResponse(html, status_code=status)

    def reveal_of(request: Request) -> bool:
        return request.query_params.get("reveal") == "1"

    def queue_href(check: str, i: int | None = None, reveal: bool = False) -> str:
        query = {} if i is None else {"i": str(i)}
        if reveal:
            query["reveal"] = "1"
        return f"/queue/{quote(check, safe='')}" + ("?" + urlencode(query) if query else "")

    async def form_of(request: Request) -> dict[str, str]:
        """A urlencoded form, after its token (CSRF) is checked."""
        body = await request.body()
        if len(body) > MAX_BODY:
            raise _Refused(413, "form too large")
        parsed = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
        fields = {k: v[0] for k, v in parsed.items()}
        if not secrets.compare_digest(fields.get("token", "").encode(), session.token.encode()):
            raise _Refused(403, "the form's token is missing or wrong: reload the page")
        return fields

    async def home(request: Request) -> Response:
        records = session.records()
        queues = session.queues(records, ordered=False)  # counts only
        reveal = reveal_of(request)
        rows = []
        for check, items in queues.items():
            first = items[0]
            rows.append(
                {
                    "check": check,
                    "question": f"{first.question} {first.question_title}".strip(),
                    "prompt": first.prompt,
                    "pending": sum(1 for i in items if not i.reviewed),
                    "marked": sum(1 for i in items if i.reviewed),
                    "total": len(items),
                    "href": queue_href(check, reveal=reveal),
                }
            )
        n_items = sum(len(v) for v in queues.values())
        return render(
            "home.html.j2",
            records=records,
            queues=rows,
            reveal=reveal,
            n_items=n_items,
            n_pending=sum(r["pending"] for r in rows),
        )

    def item_page(
        request: Request,
        check: str,
        items: list[Item],
        index: int,
        records: list[GradeRecord],
        *,
        reveal: bool,
        error: str | None = None,
        status: int = 200,
    ) -> Response:
        item = items[index]
        members = [
            {
                "item": m,
                "key": pseudonym(session.secret, m.student),
                "label": m.student if reveal else f"Answer #{n + 1}",
            }
            for n, m in enumerate(items)
            if item.group is not None and m.group == item.group and not m.reviewed
        ]
        return render(
            "item.html.j2",
            status=status,
            records=records,
            check=check,
            item=item,
            index=index,
            total=len(items),
            pending=sum(1 for i in items if not i.reviewed),
            reveal=reveal,
            toggle_href=queue_href(check, index, not reveal),
            key=pseudonym(session.secret, item.student),
            action=f"/queue/{quote(check, safe='')}/mark",
            previous_href=queue_href(check, index - 1, reveal) if index > 0 else None,
            next_href=queue_href(check, index + 1, reveal) if index + 1 < len(items) else None,
            bank=session.comment_bank(check),
            members=members if len(members) > 1 else [],
            ungroup_action=f"/queue/{quote(check, safe='')}/ungroup",
            error=error,
        )

    async def queue_page(request: Request) -> Response:
        check = request.path_params["check"]
        records = session.records()
        items = await run_in_threadpool(session.queue, check, records)
        if not items:
            return PlainTextResponse(f"no answers to {check} await review", status_code=404)
        reveal = reveal_of(request)
        raw = request.query_params.get("i")
        if raw is None:
            index = next((n for n, i in enumerate(items) if not i.reviewed), None)
            if index is None:
                done = [
                    {
                        "item": it,
                        "label": it.student if reveal else f"Answer #{n + 1}",
                        "href": queue_href(check, n, reveal),
                    }
                    for n, it in enumerate(items)
                ]
                return render("done.html.j2", records=records, check=check, items=done)
        else:
            try:
                index = int(raw)
            except ValueError:
                return PlainTextResponse("i must be a number", status_code=400)
            if not 0 <= index < len(items):
                return PlainTextResponse("no such answer in this queue", status_code=404)
        return item_page(request, check, items, index, records, reveal=reveal)

    async def mark(request: Request) -> Response:
        check = request.path_params["check"]
        fields = await form_of(request)
        reveal = fields.get("reveal") == "1"
        records = session.records()
        items = await run_in_threadpool(session.queue, check, records)
        key = fields.get("key")
        found = [(n, i) for n, i in enumerate(items) if pseudonym(session.secret, i.student) == key]
        if not found:
            return PlainTextResponse("that answer is not in this queue (reload the page)", 404)
        index, item = found[0]
        action = fields.get("action", "save")
        text = fields.get("points", "").strip().replace(",", ".")
        comment = fields.get("comment", "").strip()
        if action == "accept" or not text:
            calibrated = item.proposal is not None and item.proposal.calibrated
            points = item.offer
            why = "accepted calibrated suggestion" if calibrated else "accepted suggestion"
        else:
            try:
                points = float(text)
            except ValueError:
                points = -1.0
            why = "marked"
            if not 0 <= points <= item.max_score:
                return item_page(
                    request,
                    check,
                    items,
                    index,
                    records,
                    reveal=reveal,
                    error=f"the mark must be a number from 0 to {item.max_score:g}, not {text!r}",
                    status=400,
                )
        # the group as the page showed it (its members' keys), those still unmarked
        shown = set(fields.get("members", "").split(",")) | {key}
        group = [
            i for i in items if pseudonym(session.secret, i.student) in shown and not i.reviewed
        ]
        if fields.get("whole_group") == "1" and len(group) > 1:
            session.mark_group(group, points, comment, why)
        else:
            session.mark(item, points, comment, why)
        items = await run_in_threadpool(session.queue, check)
        # the next answer still to mark after this one, else any before it, else done; a
        # learning queue puts the marked answers first, so that is its most informative
        start = 0 if session.learner is not None and check in session.learner.specs else index + 1
        order = list(range(start, len(items))) + list(range(0, start))
        following = next((n for n in order if not items[n].reviewed), None)
        target = queue_href(check, following, reveal)
        if following is None:
            target = queue_href(check, reveal=reveal)  # the queue's "all marked" page
        return RedirectResponse(target, status_code=303)

    async def ungroup(request: Request) -> Response:
        check = request.path_params["check"]
        fields = await form_of(request)
        reveal = fields.get("reveal") == "1"
        items = await run_in_threadpool(session.queue, check)
        key = fields.get("key")
        found = [i for i in items if pseudonym(session.secret, i.student) == key]
        if not found:
            return PlainTextResponse("that answer is not in this queue (reload the page)", 404)
        session.ungroup(found[0])
        back = fields.get("back")
        items = await run_in_threadpool(session.queue, check)
        index = next(
            (n for n, i in enumerate(items) if pseudonym(session.secret, i.student) == back), 0
        )
        return RedirectResponse(queue_href(check, index, reveal), status_code=303)

    def regrades_response(
        records: list[GradeRecord], *, notice: str | None = None, error: str | None = None,
        status: int = 200,
    ) -> Response:  # fmt: skip
        scores = {
            (r.student, c.id): (c.score, c.max_score)
            for r in records
            for q in r.questions
            for c in q.checks
        }
        requests = audit.load_regrades(session.out_dir / audit.REGRADES_FILE)
        open_rows = []
        for r in requests:
            if r.status == "open":
                current, top = scores.get((r.student, r.check), (None, None))
                open_rows.append({**r.to_dict(), "current": current, "max": top})
        checks: list[str] = []
        for rec in records:
            for q in rec.questions:
                for c in q.checks:
                    if c.id not in checks:
                        checks.append(c.id)
        return render(
            "regrades.html.j2",
            status=status,
            records=records,
            open=open_rows,
            resolved=[r.to_dict() for r in requests if r.status == "resolved"],
            students=[r.student for r in records],
            checks=checks,
            notice=notice,
            error=error,
        )

    async def regrades(request: Request) -> Response:
        notice = {"filed": "Request filed.", "resolved": "Request resolved."}.get(
            request.query_params.get("done", "")
        )
        return regrades_response(session.records(), notice=notice)

    async def file_regrade(request: Request) -> Response:
        fields = await form_of(request)
        try:
            session.file_regrade(
                fields.get("student", ""), fields.get("check", ""), fields.get("reason", "")
            )
        except audit.RegradeError as exc:
            return regrades_response(session.records(), error=str(exc), status=400)
        return RedirectResponse("/regrades?done=filed", status_code=303)

    async def resolve_regrade(request: Request) -> Response:
        fields = await form_of(request)
        text = fields.get("points", "").strip().replace(",", ".")
        points: float | None = None
        if text:
            try:
                points = float(text)
            except ValueError:
                return regrades_response(
                    session.records(), error=f"the new mark must be a number, not {text!r}",
                    status=400,
                )  # fmt: skip
        try:
            session.resolve_regrade(
                int(request.path_params["rid"]), points, fields.get("comment", "")
            )
        except (audit.RegradeError, OverridesError) as exc:
            return regrades_response(session.records(), error=str(exc), status=400)
        return RedirectResponse("/regrades?done=resolved", status_code=303)

    async def dashboard_page(request: Request) -> Response:
        records = session.records()
        html = dashboard.dashboard_html(
            records,
            report_href=lambda s: "/report/" + quote(s, safe=""),
            sections=dashboard.provided_sections(records, session.out_dir),
            nav={"Queues": "/", "Regrades": "/regrades"},
            live=True,
        )
        return HTMLResponse(html)

    async def report(request: Request) -> Response:
        from grader.report.render import report_file_name

        student = request.path_params["student"]
        # looked up among the students, never a path from the request
        known = {r.student for r in session.records()}
        if student not in known:
            return PlainTextResponse("no such student", status_code=404)
        path = session.out_dir / "reports" / report_file_name(student)
        if not path.is_file():
            return PlainTextResponse("this report is not rendered yet", status_code=404)
        return Response(
            path.read_bytes(),
            media_type="application/pdf",
            headers={"Content-Disposition": "inline"},
        )

    async def status(request: Request) -> Response:
        if request.query_params.get("wait") == "1":  # until the reports are rendered
            await run_in_threadpool(session.renderer.wait_idle, 300)
        return JSONResponse(
            {"rendering": session.renderer.busy, "render_error": session.renderer.error}
        )

    async def refused(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, _Refused)
        return PlainTextResponse(exc.text, status_code=exc.status)

    async def failed(request: Request, exc: Exception) -> Response:
        return PlainTextResponse(f"grade review: {exc}", status_code=500)

    routes = [
        Route("/", home),
        Route("/queue/{check}", queue_page),
        Route("/queue/{check}/mark", mark, methods=["POST"]),
        Route("/queue/{check}/ungroup", ungroup, methods=["POST"]),
        Route("/regrades", regrades),
        Route("/regrades/file", file_regrade, methods=["POST"]),
        Route("/regrades/{rid:int}/resolve", resolve_regrade, methods=["POST"]),
        Route("/dashboard", dashboard_page),
        Route("/report/{student}", report),
        Route("/status", status),
    ]
    return Starlette(
        routes=routes,
        middleware=[Middleware(Guard, session=session, port=port)],
        exception_handlers={_Refused: refused, GraderError: failed},
    )


class _Refused(Exception):
    """A request refused with a status and a message."""

    def __init__(self, status: int, text: str) -> None:
        super().__init__(text)
        self.status = status
        self.text = text


# ------------------------------------------------------------------- serving


def bind(port: int = 0) -> socket.socket:
    """A listening socket on 127.0.0.1 (``port`` 0: any free port)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(64)
    return sock


def drop_privileges(out_dir: Path, user: str | None) -> str | None:
    """When running as root, become ``user`` (else the owner of ``out_dir``) for good:
    no supplementary groups, that user's uid and gid, a private HOME and cache. Returns
    the user's name, or None when not root. Raises :class:`GraderError` when no
    unprivileged user is named or that user cannot write ``out_dir``."""
    if os.geteuid() != 0:
        return None
    if user is not None:
        try:
            entry = pwd.getpwnam(user)
        except KeyError as exc:
            raise GraderError(f"--user {user}: no such user") from exc
    else:
        owner = out_dir.stat().st_uid
        if owner == 0:
            raise GraderError(
                f"{out_dir} belongs to root and grade review does not serve pages as root: "
                f"pass --user NAME (a user who may write {out_dir}), or chown -R it to one"
            )
        entry = pwd.getpwuid(owner)
    if entry.pw_uid == 0:
        raise GraderError(f"--user {entry.pw_name}: that is root; name an unprivileged user")
    os.setgroups([])
    os.setgid(entry.pw_gid)
    os.setuid(entry.pw_uid)
    if os.getuid() == 0 or os.geteuid() == 0:  # pragma: no cover - setuid failed silently
        raise GraderError("could not leave root")
    home = tempfile.mkdtemp(prefix="grade-review-")
    os.environ.update(
        {"HOME": home, "XDG_CACHE_HOME": home, "USER": entry.pw_name, "LOGNAME": entry.pw_name}
    )
    if not os.access(out_dir, os.W_OK) or not os.access(out_dir / "results", os.W_OK):
        raise GraderError(f"{entry.pw_name} may not write {out_dir}: chown -R it to that user")
    return entry.pw_name


class Server:
    """The uvicorn server of a session on an already bound socket, run in this thread
    (:meth:`run`) or a background one (:meth:`start`/:meth:`stop`, for tests)."""

    def __init__(self, session: ReviewSession, sock: socket.socket) -> None:
        import uvicorn

        self.session = session
        self.sock = sock
        self.port = int(sock.getsockname()[1])
        config = uvicorn.Config(
            create_app(session, self.port),
            log_level="warning",
            lifespan="off",
            proxy_headers=False,
            server_header=False,
            access_log=False,
        )
        self.server = uvicorn.Server(config)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """The URL with the token (the only way in)."""
        return f"http://127.0.0.1:{self.port}/?token={self.session.token}"

    def run(self) -> None:
        """Serve until interrupted."""
        self.server.run(sockets=[self.sock])

    def start(self) -> None:
        """Serve in a background thread (connections wait in the socket's backlog until
        it accepts them, so callers need not wait)."""
        self._thread = threading.Thread(target=self.run, name="review-server", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the background server and wait for it."""
        self.server.should_exit = True
        if self._thread is not None:
            self._thread.join()
        self.sock.close()


def serve(
    out_dir: Path,
    *,
    who: str,
    port: int = 0,
    user: str | None = None,
    rubric: str | None = None,
    print_url: Callable[[str], None] = print,
) -> None:
    """``grade review OUT``: bind 127.0.0.1, leave root, print the URL, serve. The
    rubric (``rubric``, else the one ``OUT/batch.json`` names when it is unchanged)
    makes the written answers' suggestions learn from the marks."""
    out_dir = out_dir.resolve()
    sock = bind(port)
    became = drop_privileges(out_dir, user)
    found, note = rubric_of(out_dir, rubric)
    learner = Learner.for_rubric(found) if found is not None else None
    session = ReviewSession(out_dir, who, learner=learner, note=note)
    server = Server(session, sock)
    # the model loads and the answers are embedded while the instructor opens the URL
    threading.Thread(target=session.prepare, name="review-prepare", daemon=True).start()
    if became:
        print_url(f"serving as {became} (uid {os.getuid()}), not root")
    print_url(f"review {out_dir} as {who} at {server.url}")
    server.run()

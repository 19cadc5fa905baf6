"""HTML to PDF with WeasyPrint: one font configuration and one parsed CSS per process.

Kept apart from :mod:`grader.report.render` so that a batch whose reports are all
current (an unchanged re-run) never imports WeasyPrint (about 1 s).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from weasyprint import CSS, HTML
from weasyprint.text.fonts import FontConfiguration

from grader.atomic import write_atomic
from grader.report.render import CSS_FILE, TEMPLATES_DIR, UA_FILE


@lru_cache(maxsize=1)
def font_config() -> FontConfiguration:
    """The one font configuration every render in this process shares."""
    return FontConfiguration()


@lru_cache(maxsize=1)
def stylesheet() -> CSS:
    """``report.css`` parsed once against the shared font configuration."""
    return CSS(filename=str(TEMPLATES_DIR / CSS_FILE), font_config=font_config())


@lru_cache(maxsize=1)
def ua_stylesheet() -> CSS:
    """``ua.css``: the small user-agent stylesheet that replaces WeasyPrint's HTML5 one."""
    return CSS(filename=str(TEMPLATES_DIR / UA_FILE), font_config=font_config())


class _TemplateHTML(HTML):  # type: ignore[misc]
    """An HTML document styled with ``ua.css`` instead of the full HTML5 UA stylesheet.

    WeasyPrint matches every selector of its UA stylesheet against every element; the
    templates use a dozen element types, so a UA sheet for just those renders about a
    fifth faster with the same look. (``_ua_stylesheets`` is WeasyPrint's hook for this;
    should a future version stop calling it, its own UA stylesheet is used instead.)
    """

    def _ua_stylesheets(self, forms: bool = False) -> list[CSS]:
        return [ua_stylesheet()]


def html_to_pdf(html: str, out_pdf: Path) -> None:
    """Write ``html`` (one of our templates) to ``out_pdf`` with the shared CSS and fonts.

    Written atomically (:func:`grader.atomic.write_atomic`): a report killed mid-write
    leaves the previous PDF, never a truncated one that the report index would take
    for current.
    """
    document = _TemplateHTML(string=html, base_url=str(TEMPLATES_DIR))
    write_atomic(
        out_pdf,
        lambda handle: document.write_pdf(
            handle, stylesheets=[stylesheet()], font_config=font_config()
        ),
    )

"""Word counts and sentences that work for languages written without spaces."""

from __future__ import annotations

import re

# Han ideographs (with extension A and compatibility forms), kana: scripts written
# without spaces between words. Hangul is written with spaces and is counted by them.
_CJK = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\u3040-\u30ff"
_CJK_CHAR = re.compile(f"[{_CJK}]")
_ALNUM_RUN = re.compile(rf"[^\W{_CJK}]+")
# A sentence ends at . ! ? followed by a space, at CJK full stops, at a semicolon, or at
# a line break (fullwidth marks written as escapes); Markdown bullets are stripped.
_SENTENCE_END = re.compile("(?<=[.!?])\\s+|[\u3002\uff01\uff1f\uff1b;]+|\n+")
_BULLET = re.compile(r"^\s*(?:[-*+•]|\d+[.)]|#+)\s+")
_CLAUSE = re.compile("[,\uff0c:\uff1a\u3001]|\\s[-\u2013\u2014]+>?\\s|=>|->")


def count_words(text: str) -> int:
    """Words in ``text``: whitespace-separated tokens, except that each CJK character
    (Chinese, Japanese kana) counts as one word, as word processors count them.

    A token that mixes scripts (``loss来回oscillate``) counts its CJK characters plus
    its runs of letters or digits; a token without CJK characters counts once, whatever
    it holds, as before.
    """
    total = 0
    for token in text.split():
        cjk = len(_CJK_CHAR.findall(token))
        total += cjk + len(_ALNUM_RUN.findall(token)) if cjk else 1
    return total


def _paragraphs(text: str) -> str:
    """Markdown's soft line breaks joined: a line continues the previous one unless a
    blank line, a bullet, a numbered item or a heading starts it."""
    lines: list[str] = []
    for line in text.splitlines():
        if lines and line.strip() and lines[-1].strip() and not _BULLET.match(line):
            lines[-1] = lines[-1].rstrip() + " " + line.strip()
        else:
            lines.append(line)
    return "\n".join(lines)


def sentences(text: str) -> list[str]:
    """The sentences of an answer (Markdown bullets, numbered items, headings and
    paragraphs split too; a soft line break does not), in order, without empty ones."""
    out: list[str] = []
    for piece in _SENTENCE_END.split(_paragraphs(text)):
        piece = _BULLET.sub("", piece).strip(" \t*_>")
        if piece and re.search(r"\w", piece):
            out.append(piece)
    return out


def units(text: str, *, min_clause_words: int = 4) -> list[str]:
    """What concepts are matched against: every sentence, and the clauses of a sentence
    that has several (split at commas, colons and arrows), so that a long sentence
    making two points can match each point on its own."""
    out: list[str] = []
    for sentence in sentences(text):
        out.append(sentence)
        clauses = [c.strip() for c in _CLAUSE.split(sentence)]
        clauses = [c for c in clauses if count_words(c) >= min_clause_words]
        if len(clauses) > 1:
            out.extend(c for c in clauses if c not in out)
    return out

"""Fingerprints of code (winnowed k-grams of normalised tokens) and of written answers
(word shingles, or character shingles for scripts written without spaces).

Code is normalised as copydetect's tokenizer does (``copydetect.utils.filter_code``:
comments and whitespace dropped, every variable, attribute and function name replaced by
one letter and string contents by another), so renaming variables or rewriting comments
leaves the fingerprints unchanged; the standard library's tokenizer does it here, as
copydetect's pygments lexer took most of a 500-student batch's time, and copydetect's
own lexer reads what the standard one cannot (IPython magics). copydetect's winnowing
(``copydetect.utils.winnow``, the robust winnowing of Schleimer et al. 2003) selects the
fingerprints. Its own k-gram hash is Python's ``hash()``, which is salted per process;
the fingerprints here are kept in ``OUT`` and compared with an earlier batch's
(``--compare-with``), so the k-grams are hashed here with a fixed polynomial hash instead.
"""

from __future__ import annotations

import builtins
import functools
import io
import keyword
import re
import tokenize
import warnings
from dataclasses import dataclass

import numpy as np

#: Characters of a k-gram of normalised code (copydetect's default noise threshold).
CODE_K = 25
#: Winnowing window: every shared run of CODE_K + CODE_WINDOW - 1 characters is found.
CODE_WINDOW = 6
#: Tokens per shingle of a written answer (words, or characters in unspaced scripts).
TEXT_K = 5
#: Fingerprint hashes fit 52 bits: exact as JSON numbers in any reader, and as floats in
#: copydetect's winnowing buffer.
_MASK = (1 << 52) - 1
_BASE = np.uint64(1_000_003)
#: A kind's salt keeps code and text fingerprints apart in one index.
_SALT = {"code": np.uint64(0x9E3779B97F4A7C15), "text": np.uint64(0xC2B2AE3D27D4EB4F)}


@dataclass(frozen=True)
class Fingerprints:
    """A unit's fingerprints: hash, position in the normalised sequence, source line.

    ``length`` is the normalised sequence's length (characters of code, tokens of
    text), the unit of ``positions``; coverage is measured in it.
    """

    hashes: tuple[int, ...]
    positions: tuple[int, ...]
    lines: tuple[int, ...]  # 1-based line of the unit's source where each k-gram starts
    length: int


EMPTY = Fingerprints((), (), (), 0)


def _kgram_hashes(codes: np.ndarray, k: int, kind: str) -> np.ndarray:
    """A polynomial hash of every k-gram of ``codes`` (uint64 arithmetic wraps), mixed
    and cut to 52 bits."""
    n = len(codes) - k + 1
    h = np.zeros(n, dtype=np.uint64)
    values = codes.astype(np.uint64)
    with np.errstate(over="ignore"):
        for j in range(k):
            h = h * _BASE + values[j : j + n]
        h ^= _SALT[kind]
        h ^= h >> np.uint64(31)
        h *= np.uint64(0xBF58476D1CE4E5B9)
        h ^= h >> np.uint64(29)
    return (h & np.uint64(_MASK)).astype(np.int64)


def _line_starts(text: str) -> np.ndarray:
    return np.array([0] + [m.end() for m in re.finditer("\n", text)], dtype=np.int64)


_KEEP = frozenset(keyword.kwlist) | frozenset(dir(builtins))


def normalise_python(source: str) -> tuple[str, list[int]] | None:
    """Python source as copydetect's tokenizer normalises it - comments and whitespace
    dropped, a variable or attribute name → ``V``, a function being defined → ``F``, a
    class → ``O``, a string → ``"S"``; keywords, builtins, the names of an import
    statement, numbers and operators kept - with the 1-based source line of every
    character. Uses the standard library's tokenizer, several times faster than
    copydetect's pygments lexer over a batch; None when it cannot read the source
    (IPython magics, unfinished code), which copydetect's lexer then handles."""
    out: list[str] = []
    lines: list[int] = []
    previous = ""
    importing = False
    try:
        for tok in tokenize.generate_tokens(io.StringIO(source).readline):
            kind, text = tok.type, tok.string
            if kind in _SKIPPED:
                if kind == tokenize.NEWLINE:
                    importing = False
                continue
            if kind == tokenize.ERRORTOKEN and not text.strip():
                continue
            if kind == tokenize.NAME:
                if text in ("import", "from"):
                    importing = True
                if importing or (text in _KEEP and previous != "."):
                    piece = text
                elif previous == "def":
                    piece = "F"
                elif previous == "class":
                    piece = "O"
                else:
                    piece = "V"
            elif kind == tokenize.STRING:
                piece = '"S"'
            else:
                piece = text
            previous = text
            out.append(piece)
            lines.extend([tok.start[0]] * len(piece))
    except (tokenize.TokenError, IndentationError, SyntaxError):
        return None
    return "".join(out), lines


_SKIPPED = frozenset(
    {
        tokenize.COMMENT,
        tokenize.NL,
        tokenize.NEWLINE,
        tokenize.INDENT,
        tokenize.DEDENT,
        tokenize.ENDMARKER,
        tokenize.ENCODING,
    }
)


@functools.lru_cache(maxsize=4096)
def code_fingerprints(source: str) -> Fingerprints:
    """Winnowed fingerprints of Python source, normalised (:func:`normalise_python`, or
    copydetect's ``filter_code`` where the standard tokenizer gives up). Cached by text:
    every student has the same given cells."""
    from copydetect.utils import winnow  # imports matplotlib: only when used

    read = normalise_python(source)
    if read is not None:
        filtered, char_lines = read
        line_of = np.array(char_lines, dtype=np.int64)
    else:
        filtered, line_of = _copydetect_normalised(source)
    if len(filtered) < CODE_K:
        return Fingerprints((), (), (), len(filtered))
    codes = np.frombuffer(filtered.encode("utf-32-le"), dtype=np.uint32)
    hashes = _kgram_hashes(codes, CODE_K, "code")
    selected, idx = winnow(hashes, CODE_WINDOW, remove_duplicates=False)
    idx = np.asarray(idx, dtype=np.int64)
    return Fingerprints(
        tuple(int(h) for h in selected),
        tuple(int(i) for i in idx),
        tuple(int(line) for line in line_of[idx]),
        len(filtered),
    )


def _copydetect_normalised(source: str) -> tuple[str, np.ndarray]:
    """copydetect's own normalisation, with each character's source line through its
    offsets (as copydetect maps highlights back)."""
    from copydetect.utils import filter_code

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        filtered, offsets = filter_code(source, "cell.py", "python")
    idx = np.arange(len(filtered), dtype=np.int64)
    original = idx.copy()
    if len(offsets) > 0:
        at = np.clip(np.searchsorted(offsets[:, 0], idx), 0, offsets.shape[0] - 1)
        original = idx + offsets[:, 1][at]
    return filtered, np.searchsorted(_line_starts(source), original, side="right")


#: Scripts written without spaces between words: their letters are tokens of their own.
_UNSPACED = re.compile(
    "[\u0e00-\u0eff\u1000-\u109f\u1780-\u17ff\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]"
)
_WORD = re.compile(r"\w+")


def text_tokens(text: str) -> list[tuple[str, int]]:
    """Lower-cased words with their 1-based line; a letter of an unspaced script (Chinese,
    Japanese, Thai, …) is a token of its own, so shingles become character shingles."""
    tokens: list[tuple[str, int]] = []
    for number, line in enumerate(text.lower().splitlines(), start=1):
        for word in _WORD.findall(line):
            if _UNSPACED.search(word):
                tokens.extend((part, number) for part in re.findall(r".", word))
            else:
                tokens.append((word, number))
    return tokens


def text_fingerprints(text: str) -> Fingerprints:
    """Every shingle of TEXT_K tokens of a written answer (answers are short: no
    winnowing)."""
    tokens = text_tokens(text)
    if len(tokens) < TEXT_K:
        return Fingerprints((), (), (), len(tokens))
    vocabulary: dict[str, int] = {}
    # a token's code must not depend on the batch: hash its text
    codes = np.array(
        [vocabulary.setdefault(word, _stable_word(word)) for word, _ in tokens], dtype=np.uint64
    )
    hashes = _kgram_hashes(codes, TEXT_K, "text")
    n = len(hashes)
    return Fingerprints(
        tuple(int(h) for h in hashes),
        tuple(range(n)),
        tuple(line for _, line in tokens[:n]),
        len(tokens),
    )


def _stable_word(word: str) -> int:
    """A word's code, the same in every process (unlike ``hash``)."""
    value = 1469598103934665603
    for byte in word.encode("utf-8"):
        value = ((value ^ byte) * 1099511628211) & 0xFFFFFFFFFFFFFFFF
    return value

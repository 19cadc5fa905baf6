"""The notebook cell of the confinement tests: search the sandbox for the course's and
the grader's files (:mod:`tests.sandbox.test_installed`).

It walks the whole visible file system (but ``/proc``, ``/sys``, ``/dev``) and reports
any file whose path is one of the grader's or the reference's own files; it reads every
small file outside ``/usr`` and outside the big third-party packages (where no marker
was planted: reading them would take a minute) and reports any that holds a secret
marker; it then tries the paths it was told about, the imports and the grader
distribution's file list. The markers are assembled at run time, so the notebook's own
text never holds one.
"""

from __future__ import annotations

from collections.abc import Sequence

#: Paths ending so are the grader's or the shipped reference's own files.
TELLTALES = ("/grader/pipeline.py", "/reference/hw3.py", "/rubrics/hw3.yaml", "/grader/rubric.py")


#: Third-party packages whose files are only listed, not read (no marker is in them).
BULK = frozenset(
    (
        "torch",
        "nvidia",
        "triton",
        "sympy",
        "scipy",
        "pandas",
        "sklearn",
        "matplotlib",
        "numpy",
        "numpy.libs",
        "scipy.libs",
        "functorch",
        "torchgen",
        "distributed",
        "dask",
    )
)


def probe_cell(secret_prefix: str, public_prefix: str, known: Sequence[str]) -> str:
    """The source of a cell that sets ``report``: ``leaks=<found or none>;public=<yes|no>``
    (``public``: the provided data file's marker was found by the same walk), and
    ``clean``: 1 when nothing leaked and the marker was found, else minus the number of
    leaks (minus 1000 more when the marker was not found)."""
    half = len(secret_prefix) // 2
    return f"""
import importlib, importlib.metadata, os
secret = ({secret_prefix[:half]!r} + {secret_prefix[half:]!r}).encode()
public = ({public_prefix[:1]!r} + {public_prefix[1:]!r}).encode()
telltales = {TELLTALES!r}
found, seen_public = [], False
bulk = {BULK!r}
for top, dirs, files in os.walk('/'):
    if top == '/':
        dirs[:] = [d for d in dirs if d not in ('proc', 'sys', 'dev')]
    skim = top == '/usr' or top.startswith('/usr/') or bulk.intersection(top.split('/'))
    for name in files:
        path = os.path.join(top, name)
        if path.endswith(telltales):
            found.append(path)
        if skim or name.endswith(('.so', '.pyc', '.a', '.h', '.hpp', '.cuh')) or '.so.' in name:
            continue
        try:
            if os.path.islink(path) or os.path.getsize(path) > 262144:
                continue
            with open(path, 'rb') as fh:
                data = fh.read()
        except OSError:
            continue
        if secret in data:
            found.append(path)
        if public in data:
            seen_public = True
for path in {list(known)!r}:
    try:
        if os.path.isdir(path):
            if not os.listdir(path):
                continue  # an empty folder (a mask) shows nothing
        else:
            open(path, 'rb').read(1)
        found.append('read ' + path)
    except OSError:
        pass
for mod in ('grader', 'grader.pipeline', 'reference', 'reference.hw3'):
    try:
        m = importlib.import_module(mod)
        if getattr(m, '__file__', None):
            found.append('import ' + mod)
    except Exception:
        pass
try:
    for f in importlib.metadata.files('grader') or []:
        try:
            f.read_text()
            if str(f).endswith('.py'):
                found.append('metadata ' + str(f))
        except Exception:
            pass
except Exception:
    pass
leaks = ','.join(sorted(set(found))) or 'none'
report = 'leaks=' + leaks + ';public=' + ('yes' if seen_public else 'no')
clean = 1 if report == 'leaks=none;public=yes' else -len(found) - 1000 * (not seen_public)
"""

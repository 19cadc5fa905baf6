"""Agreement of the ``text`` check's suggestions with hand marks (issue 19).

Run by hand from the project root::

    PYTHONPATH=. .venv/bin/python bench/marks/bench_marks.py [--seeds 20]

Over the 126 hand-marked answers of ``answers_*.yaml`` (six questions, marks 0–3 by
``schemes.md``) and the schemes of ``rubric.yaml``, it prints quadratic weighted kappa,
exact and within-one agreement, overall, on English and on the other answers, for:

- concept-only: the scheme's mark from literal phrases alone (``match: phrases``);
- embedding: the scheme's mark from phrases and meaning (the check's default);
- calibrated after 5 and 10 instructor marks per question, the marked answers chosen at
  random (mean over ``--seeds`` draws) or in the review page's order
  (:func:`grader.marks.calibrate.review_order`, from no marks on), measured on the
  answers not yet marked.

It also times the model's load and the marking, reports the resident memory, and how
pure the groups of :func:`group_answers` are (answers in one group with the same mark).
"""

from __future__ import annotations

import argparse
import re
import resource
import time
from pathlib import Path

import numpy as np
import yaml
from sklearn.metrics import cohen_kappa_score

from grader.checks.text import TextSpec
from grader.marks import calibrate
from grader.marks.embed import default_encoder

HERE = Path(__file__).resolve().parent


def load() -> tuple[dict[str, TextSpec], list[dict]]:
    rubric = yaml.safe_load((HERE / "rubric.yaml").read_text(encoding="utf-8"))
    schemes = (HERE / "schemes.md").read_text(encoding="utf-8")
    prompts = {m[1]: m[2] for m in re.finditer(r"^## (\w+) — (.*)$", schemes, re.M)}
    specs = {
        q: TextSpec.model_validate(
            {"id": q, "type": "text", "heading": q, "prompt": prompts[q], **body}
        )
        for q, body in rubric.items()
    }
    answers: list[dict] = []
    for name in sorted(HERE.glob("answers_*.yaml")):
        answers += yaml.safe_load(name.read_text(encoding="utf-8"))
    return specs, answers


def agreement(gold: list[int], pred: list[float]) -> tuple[float, float, float]:
    g, p = np.array(gold), np.rint(np.array(pred)).astype(int)
    kappa = cohen_kappa_score(g, p, weights="quadratic", labels=[0, 1, 2, 3])
    return float(kappa), float(np.mean(g == p)), float(np.mean(np.abs(g - p) <= 1))


def table(name: str, rows: list[tuple[int, float, bool]]) -> None:
    cells = []
    for label, keep in (
        ("all", lambda r: True),
        ("en", lambda r: not r[2]),
        ("other", lambda r: r[2]),
    ):
        sel = [r for r in rows if keep(r)]
        k, e, w = agreement([r[0] for r in sel], [r[1] for r in sel])
        cells.append(f"{label} κ {k:5.3f} exact {e:4.2f} ±1 {w:4.2f} (n={len(sel)})")
    print(f"{name:<42}" + " | ".join(cells))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=20)
    args = parser.parse_args()
    specs, answers = load()
    by_q: dict[str, dict[str, dict]] = {}
    for a in answers:
        by_q.setdefault(a["q"], {})[a["id"]] = a
    other = {a["id"]: a["lang"] != "en" for a in answers}

    t = time.perf_counter()
    default_encoder().encode(["warm up"])
    load_s = time.perf_counter() - t
    t = time.perf_counter()
    plain: list[tuple[int, float, bool]] = []
    meaning: list[tuple[int, float, bool]] = []
    for q, items in by_q.items():
        texts = {i: a["text"] for i, a in items.items()}
        phr = calibrate.suggest(specs[q].model_copy(update={"match": "phrases"}), texts)
        emb = calibrate.suggest(specs[q], texts)
        for i, a in items.items():
            plain.append((a["mark"], phr[i].mark, other[i]))
            meaning.append((a["mark"], emb[i].mark, other[i]))
    mark_s = time.perf_counter() - t
    print(
        f"model: {default_encoder().name}; load {load_s:.2f} s; "
        f"{len(answers)} answers marked in {mark_s:.1f} s (cold, one thread); "
        f"max RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB"
    )
    table("concept-only (phrases)", plain)
    table("embedding (phrases + meaning)", meaning)

    for label, mode in (("", "meaning"), (" on phrases", "phrases")):
        for k in (5, 10):
            rows: list[tuple[int, float, bool]] = []
            prior: list[tuple[int, float, bool]] = []
            for seed in range(args.seeds):
                rng = np.random.default_rng(seed)
                for q, items in by_q.items():
                    spec = specs[q].model_copy(update={"match": mode})
                    ids = sorted(items)
                    marked = list(rng.choice(ids, size=k, replace=False))
                    marks = {i: float(items[i]["mark"]) for i in marked}
                    texts = {i: a["text"] for i, a in items.items()}
                    got = calibrate.suggest(spec, texts, marks)
                    rest = [i for i in ids if i not in marks]
                    rows += [(items[i]["mark"], got[i].mark, other[i]) for i in rest]
                    prior += [(items[i]["mark"], got[i].scheme_mark, other[i]) for i in rest]
            table(f"uncalibrated{label}, same answers", prior)
            table(f"calibrated{label} after {k} (random)", rows)
            rows = []
            for q, items in by_q.items():
                spec = specs[q].model_copy(update={"match": mode})
                texts = {i: a["text"] for i, a in items.items()}
                marks = {}
                while len(marks) < k:
                    nxt = calibrate.review_order(spec, texts, marks)[0]
                    marks[nxt] = float(items[nxt]["mark"])
                got = calibrate.suggest(spec, texts, marks)
                rows += [(items[i]["mark"], got[i].mark, other[i]) for i in items if i not in marks]
            table(f"calibrated{label} after {k} (review order)", rows)

    same = total = groups = 0
    for q, items in by_q.items():
        texts = {i: a["text"] for i, a in items.items()}
        for group in calibrate.group_answers(specs[q], texts):
            if len(group) > 1:
                groups += 1
                total += len(group)
                first = items[group[0]]["mark"]
                same += sum(items[i]["mark"] == first for i in group)
    print(
        f"groups of 2+: {groups}, holding {total} answers; {same} of them share the "
        f"first member's hand mark"
    )


if __name__ == "__main__":
    main()

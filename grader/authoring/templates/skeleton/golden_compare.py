"""Compare a graded folder of the golden submissions with the points written by hand.

Usage: ``python golden/compare.py GRADED`` (``GRADED``: the ``--out`` folder of
``grade golden --rubric ... --out GRADED``). Exit status 1 when anything differs.
"""

import json
import sys
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent


def differences(graded: Path) -> list[str]:
    """Every way the results in ``graded/results`` differ from ``golden/*.yaml``."""
    found = []
    for wanted_file in sorted(HERE.glob("*.yaml")):
        student = wanted_file.stem
        wanted = yaml.safe_load(wanted_file.read_text(encoding="utf-8"))
        result_file = graded / "results" / f"{student}.json"
        if not result_file.is_file():
            found.append(f"{student}: no result ({result_file})")
            continue
        result = json.loads(result_file.read_text(encoding="utf-8"))
        got = {c["id"]: c for q in result["questions"] for c in q["checks"]}
        for check, want in wanted["checks"].items():
            have = got.get(check)
            if have is None:
                found.append(f"{student} {check}: not in the result")
                continue
            if abs(float(have["score"]) - float(want["points"])) > 1e-9:
                found.append(
                    f"{student} {check}: {have['score']} points, expected {want['points']}"
                )
            if have["status"] != want["status"]:
                found.append(
                    f"{student} {check}: status {have['status']}, expected {want['status']}"
                )
        if abs(float(result["score"]) - float(wanted["total"])) > 1e-9:
            found.append(f"{student}: total {result['score']}, expected {wanted['total']}")
    return found


if __name__ == "__main__":
    problems = differences(Path(sys.argv[1]))
    for line in problems:
        print(line)
    print("golden submissions agree" if not problems else f"{len(problems)} difference(s)")
    sys.exit(1 if problems else 0)

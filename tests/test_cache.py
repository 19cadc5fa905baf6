"""The cache of executions and results: its keys' invalidation rules, its plain-data
format, and incremental regrades of a small HW3 batch (no kernel starts when only
scoring changed)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import grader.batch
import grader.cache
import grader.sandbox.readiness
import grader.sandbox.stages
from grader.cache import (
    Executed,
    GradeCache,
    execution_fingerprint,
    execution_key,
    result_key,
)
from grader.cli import main
from grader.discover import discover
from grader.models import (
    Answer,
    Call,
    CallResult,
    CellFailure,
    ExecutionReport,
    ModuleRun,
    NotebookRun,
    Stored,
)
from grader.pipeline import submission_hash
from grader.results import record_from_dict, record_to_dict
from grader.rubric import RUBRICS_DIR, Rubric, load_rubric

ROOT = Path(__file__).resolve().parent.parent
HW3 = (RUBRICS_DIR / "hw3.yaml").read_text()
REF = "f" * 64


def edited(tmp_path: Path, old: str, new: str, name: str = "edit.yaml") -> Rubric:
    """hw3.yaml with one textual edit (which must apply)."""
    assert old in HW3, old
    path = tmp_path / name
    path.write_text(HW3.replace(old, new, 1))
    return load_rubric(path)


def fingerprint(rubric: Rubric, calls: list[Call] | None = None, ref: str = REF) -> str:
    return execution_fingerprint(rubric, calls or [], ref, "strict")


# ----------------------------------------------------------------- invalidation rules

Q2_O = "{id: q2_O, type: value, answer: q2_O, points: 4, atol: 1.0e-6}"


def test_points_edit_keeps_the_execution_and_changes_the_result(tmp_path: Path) -> None:
    base = edited(tmp_path, "", "", "base.yaml")
    points = edited(tmp_path, Q2_O, Q2_O.replace("points: 4", "points: 5"))
    assert fingerprint(points) == fingerprint(base)
    key = execution_key("s" * 64, fingerprint(base))
    assert result_key(key, points.sha256, REF) != result_key(key, base.sha256, REF)


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (Q2_O, Q2_O.replace("atol: 1.0e-6", "atol: 1.0e-3")),  # tolerance
        ("prompt: What goes wrong", "prompt: Explain what goes wrong"),  # message text
        ("name: divergence or overshooting", "name: divergence"),  # concepts
        ("title: Optimisation", "title: Optimisation and learning rates"),
    ],
)
def test_scoring_only_edits_keep_the_execution(tmp_path: Path, old: str, new: str) -> None:
    base = edited(tmp_path, "", "", "base.yaml")
    assert fingerprint(edited(tmp_path, old, new)) == fingerprint(base)


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (Q2_O, Q2_O + "\n      - {id: q2_extra, type: value, answer: q2_extra, points: 1}"),
        (Q2_O, Q2_O.replace("answer: q2_O", "answer: q2_O_renamed")),
        ("low: 0, high: 255, seed: 0}", "low: 0, high: 255, seed: 1}"),  # a probe
        ("cell_timeout: 30", "cell_timeout: 31"),  # a limit
        ("notebook: hw3.ipynb", "notebook: homework3.ipynb"),
    ],
)
def test_execution_relevant_edits_change_the_execution_key(
    tmp_path: Path, old: str, new: str
) -> None:
    base = edited(tmp_path, "", "", "base.yaml")
    assert fingerprint(edited(tmp_path, old, new)) != fingerprint(base)


def test_submission_byte_change_changes_the_execution_key(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "submissions" / "hw3" / "solution", tmp_path / "subs" / "solution")
    sub = discover(tmp_path / "subs")[0]
    before = execution_key(submission_hash(sub), "fp")
    notebook = tmp_path / "subs" / "solution" / "hw3.ipynb"
    notebook.write_bytes(notebook.read_bytes() + b" ")
    assert execution_key(submission_hash(discover(tmp_path / "subs")[0]), "fp") != before


def test_grader_version_change_changes_both_keys(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rubric = edited(tmp_path, "", "")
    fp = fingerprint(rubric)
    key = execution_key("s" * 64, fp)
    rkey = result_key(key, rubric.sha256, REF)
    monkeypatch.setattr(grader.cache, "__version__", "999.0")
    assert fingerprint(rubric) != fp
    assert result_key(key, rubric.sha256, REF) != rkey


def test_execution_code_change_changes_the_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rubric = edited(tmp_path, "", "")
    fp = fingerprint(rubric)
    monkeypatch.setattr(grader.cache, "execution_code_hash", lambda: "0" * 64)
    assert fingerprint(rubric) != fp


def test_module_calls_and_their_reference_are_part_of_the_key(tmp_path: Path) -> None:
    rubric = edited(tmp_path, "", "")
    call = Call(id="f/case0", function="f", args=(np.ones((2, 2)), Stored("k", 1)))
    changed = Call(id="f/case0", function="f", args=(np.full((2, 2), 2.0), Stored("k", 1)))
    assert fingerprint(rubric, [call]) == fingerprint(rubric, [call])
    assert fingerprint(rubric, [call]) != fingerprint(rubric, [changed])
    # inputs come from the reference: a new reference re-executes when calls are made …
    assert fingerprint(rubric, [call], "a" * 64) != fingerprint(rubric, [call], "b" * 64)
    # … and not when the submission's module is not called at all
    assert fingerprint(rubric, [], "a" * 64) == fingerprint(rubric, [], "b" * 64)


def test_where_calls_are_made_is_part_of_the_key(tmp_path: Path) -> None:
    """The same calls made in the module's worker or in the notebook's kernel run other
    code: moving a check's calls from one to the other re-executes."""
    head = "assignment: x\ntitle: T\nreference: hw3\nnotebook: x.ipynb\nmodule: m.py\n"
    body = (
        "questions:\n  - id: q1\n    checks:\n"
        "      - {id: f, type: function, points: 1, reference: f, cases: f_cases%s}\n"
    )
    call = Call(id="f/case0", function="f", args=(np.ones(2),))
    keys = []
    for source in ("", ", source: module", ", source: notebook"):
        path = tmp_path / f"r{len(keys)}.yaml"
        path.write_text(head + body % source)
        keys.append(fingerprint(load_rubric(path), [call]))
    assert keys[0] == keys[1] != keys[2]


def test_sandbox_mode_is_part_of_the_key(tmp_path: Path) -> None:
    rubric = edited(tmp_path, "", "")
    assert execution_fingerprint(rubric, [], REF, "strict") != execution_fingerprint(
        rubric, [], REF, "off"
    )


def test_named_data_sets_and_devices_are_part_of_the_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from grader import datasets
    from grader.cache import execution_spec

    monkeypatch.setenv("GRADER_DATA", str(tmp_path / "data"))
    head = "assignment: x\ntitle: T\nreference: hw3\nnotebook: x.ipynb\n"
    body = (
        "questions:\n  - id: q1\n    checks:\n      - {id: a, type: value, answer: a, points: 1}\n"
    )
    paths = {}
    for name, extra in (("plain", ""), ("data", "datasets: [mnist]\n"), ("gpu", "devices: gpu\n")):
        paths[name] = tmp_path / f"{name}.yaml"
        paths[name].write_text(head + extra + body)
    plain = load_rubric(paths["plain"])
    # a rubric without the keys keeps the key it had before they existed
    assert not {"datasets", "devices", "gpus_lent"} & set(execution_spec(plain, [], REF, "strict"))
    assert fingerprint(load_rubric(paths["gpu"]), []) != fingerprint(plain, [])
    data = load_rubric(paths["data"])
    missing = fingerprint(data, [])
    (tmp_path / "mnist.npz").write_bytes(b"one")
    datasets.add("mnist", tmp_path / "mnist.npz")
    first = fingerprint(data, [])
    (tmp_path / "mnist.npz").write_bytes(b"two")
    datasets.add("mnist", tmp_path / "mnist.npz", replace=True)
    assert len({missing, first, fingerprint(data, [])}) == 3  # the contents count


# ------------------------------------------------------------------- storage format


def sample_executed() -> Executed:
    report = ExecutionReport(
        notebook="hw3.ipynb",
        cells_total=3,
        cells_run=2,
        cells_not_run=(3,),
        failures=(CellFailure(2, "error", "NameError", "x", "tb"),),
        timed_out=False,
        kernel_died=False,
        limit_hit=None,
        warnings=("w",),
        duration_s=1.5,
    )
    answers = {
        "a": Answer("a", "ok", np.arange(6, dtype=np.float32).reshape(2, 3), "ndarray", 1),
        "b": Answer("b", "ok", [1, 2.5, float("nan"), float("-inf"), "7/4", None, True], "list"),
        "c": Answer("c", "ok", {"x": (1, 2), "__nd__": [np.int64(3)]}, "dict"),
        "d": Answer("d", "missing", message="not defined"),
        "e": Answer("e", "ok", np.array(["a", "bc"]), "ndarray"),
    }
    run = NotebookRun(
        report,
        answers,
        ("# Q1a\ntext",),
        ("x = 1",),
        ((1, "x = 1"),),
        calls={"g/0": CallResult("g/0", "ok", np.arange(3.0), mutated=(0,))},
    )
    module = ModuleRun(
        "layers.py",
        None,
        {"f/0": CallResult("f/0", "ok", [np.eye(2), 3], {1: {"mode": "train"}}, (0,))},
        0.4,
    )
    return Executed(run, None, report, module, None)


def test_execution_round_trip_keeps_types_and_arrays(tmp_path: Path) -> None:
    cache = GradeCache(tmp_path)
    executed = sample_executed()
    assert cache.store_execution("k1", executed)
    back = cache.load_execution("k1")
    assert back is not None and back.run is not None and back.module_run is not None
    assert back.execution == executed.execution
    a = back.run.answers["a"].value
    assert a.dtype == np.float32 and a.shape == (2, 3) and a.tolist() == [[0, 1, 2], [3, 4, 5]]
    b = back.run.answers["b"].value
    assert b[:2] == [1, 2.5] and np.isnan(b[2]) and b[3:] == [float("-inf"), "7/4", None, True]
    c = back.run.answers["c"].value
    assert c["x"] == (1, 2) and isinstance(c["__nd__"][0], np.int64)
    assert back.run.answers["d"] == executed.run.answers["d"]  # type: ignore[union-attr]
    assert back.run.answers["e"].value.tolist() == ["a", "bc"]
    assert back.run.markdown == executed.run.markdown  # type: ignore[union-attr]
    result = back.module_run.results["f/0"]
    assert result.args_after == {1: {"mode": "train"}} and result.mutated == (0,)
    assert np.array_equal(result.value[0], np.eye(2))
    in_kernel = back.run.calls["g/0"]  # a notebook function's call, made in its kernel
    assert in_kernel.mutated == (0,) and np.array_equal(in_kernel.value, np.arange(3.0))


def test_unencodable_values_are_not_cached(tmp_path: Path) -> None:
    cache = GradeCache(tmp_path)
    executed = sample_executed()
    run = executed.run
    assert run is not None
    odd = Answer("o", "ok", np.array([object()], dtype=object), "ndarray")
    bad = Executed(NotebookRun(run.execution, {"o": odd}), None, executed.execution, None, None)
    assert not cache.store_execution("k2", bad)
    assert cache.load_execution("k2") is None


def test_damaged_entries_are_misses(tmp_path: Path) -> None:
    cache = GradeCache(tmp_path)
    assert cache.store_execution("k3", sample_executed())
    npz = cache.execution_path("k3").with_suffix(".npz")
    npz.write_bytes(npz.read_bytes()[:-10])
    assert cache.load_execution("k3") is None
    assert cache.store_execution("k4", sample_executed())
    cache.execution_path("k4").write_text("{not json")
    assert cache.load_execution("k4") is None
    assert cache.load_execution("absent") is None
    assert not list(cache.executions.glob("*.tmp"))


# ------------------------------------------------------------ incremental regrades

STUDENTS = ("no_notebook", "pool_ceil", "solution")


@pytest.fixture(scope="module")
def graded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A three-student HW3 batch graded once."""
    root = tmp_path_factory.mktemp("incremental")
    for student in STUDENTS:
        shutil.copytree(ROOT / "submissions" / "hw3" / student, root / "subs" / student)
    assert (
        main([str(root / "subs"), "--rubric", "hw3", "--out", str(root / "out"), "--no-reports"])
        == 0
    )
    return root / "subs", root / "out"


def scores(out: Path) -> dict[str, dict[str, Any]]:
    return {
        p.stem: {
            c["id"]: (c["score"], c["status"])
            for q in json.loads(p.read_text())["questions"]
            for c in q["checks"]
        }
        for p in sorted((out / "results").glob("*.json"))
    }


def no_kernels(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make any kernel start (preflight included) or execution fail the test."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("a kernel was started")

    monkeypatch.setattr(grader.sandbox.readiness, "notebook_in_session", refuse)
    monkeypatch.setattr(grader.sandbox.stages, "notebook_in_session", refuse)
    monkeypatch.setattr(grader.batch, "execute_submission", refuse)


def regrade(subs: Path, out: Path, rubric: str, *extra: str) -> str:
    import contextlib
    import io

    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        assert main([str(subs), "--rubric", rubric, "--out", str(out), "--no-reports", *extra]) == 0
    return buffer.getvalue()


def copy_out(graded: tuple[Path, Path], tmp_path: Path) -> Path:
    out = tmp_path / "out"
    shutil.copytree(graded[1], out)
    return out


def test_no_change_rerun_executes_and_rescores_nothing(
    graded: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    subs, _ = graded
    out = copy_out(graded, tmp_path)
    before = scores(out)
    no_kernels(monkeypatch)
    text = regrade(subs, out, "hw3")
    assert "(0 executed, 0 re-scored from cached runs, 3 unchanged)" in text
    assert scores(out) == before


def test_points_and_tolerance_edit_rescores_without_any_kernel(
    graded: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    subs, _ = graded
    out = copy_out(graded, tmp_path)
    before = scores(out)
    rubric = tmp_path / "hw3.yaml"
    rubric.write_text(
        HW3.replace(Q2_O, Q2_O.replace("points: 4", "points: 6").replace("1.0e-6", "1.0e-5"))
    )
    no_kernels(monkeypatch)
    text = regrade(subs, out, str(rubric))
    assert "(0 executed, 3 re-scored from cached runs, 0 unchanged)" in text
    after = scores(out)
    assert after["solution"]["q2_O"] == (6.0, "pass")
    assert after["no_notebook"]["q2_O"] == (0.0, "fail")
    for student in STUDENTS:  # everything else is exactly as before
        assert {k: v for k, v in after[student].items() if k != "q2_O"} == {
            k: v for k, v in before[student].items() if k != "q2_O"
        }
    record = json.loads((out / "results" / "solution.json").read_text())
    assert record["max_score"] == 92 and record["provenance"]["rubric_sha256"] != ""


Q2_G = "{id: q2_G, type: value, answer: q2_G, points: 2, atol: 1.0e-6}"


def test_new_check_on_a_harvested_name_rescores_a_new_name_executes(
    graded: tuple[Path, Path], tmp_path: Path
) -> None:
    subs, _ = graded
    out = copy_out(graded, tmp_path)
    rubric = tmp_path / "hw3.yaml"
    same_name = "{id: q2_G_again, type: value, answer: q2_G, expected: q2_G, points: 1}"
    rubric.write_text(HW3.replace(Q2_G, f"{Q2_G}\n      - {same_name}"))
    assert "(0 executed, 3 re-scored from cached runs, 0 unchanged)" in regrade(
        subs, out, str(rubric)
    )
    new_name = "{id: q2_new, type: value, answer: q2_new, expected: q2_G, points: 1}"
    rubric.write_text(HW3.replace(Q2_G, f"{Q2_G}\n      - {new_name}"))
    assert "(3 executed, 0 re-scored from cached runs, 0 unchanged)" in regrade(
        subs, out, str(rubric)
    )


def test_edited_submission_and_force(graded: tuple[Path, Path], tmp_path: Path) -> None:
    subs = tmp_path / "subs"
    shutil.copytree(graded[0], subs)
    out = copy_out(graded, tmp_path)
    notebook = subs / "pool_ceil" / "hw3.ipynb"
    notebook.write_bytes(notebook.read_bytes() + b"\n")
    text = regrade(subs, out, "hw3")
    assert "(1 executed, 0 re-scored from cached runs, 2 unchanged)" in text
    assert "pool_ceil: 83/90\n" in text
    text = regrade(subs, out, "hw3", "--force")
    assert "(3 executed, 0 re-scored from cached runs, 0 unchanged)" in text


def test_tampered_result_is_regraded_from_the_cached_execution(
    graded: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    subs, _ = graded
    out = copy_out(graded, tmp_path)
    path = out / "results" / "solution.json"
    data = json.loads(path.read_text())
    data["score"] = 0
    path.write_text(json.dumps(data))
    no_kernels(monkeypatch)
    text = regrade(subs, out, "hw3")
    assert "(0 executed, 1 re-scored from cached runs, 2 unchanged)" in text
    assert json.loads(path.read_text())["score"] == 90


def test_record_from_dict_round_trips(graded: tuple[Path, Path]) -> None:
    for path in (graded[1] / "results").glob("*.json"):
        data = json.loads(path.read_text())
        assert json.loads(json.dumps(record_to_dict(record_from_dict(data)))) == data


def test_sweep_removes_only_stale_temporary_files(tmp_path: Path) -> None:
    import os

    cache = GradeCache(tmp_path)
    assert cache.store_execution("k5", sample_executed())
    stale = cache.executions / ".k6.json.x.tmp"
    fresh = cache.executions / ".k7.json.y.tmp"
    stale.write_text("half")
    fresh.write_text("half")
    os.utime(stale, (1, 1))
    cache.sweep()
    assert not stale.exists() and fresh.exists()
    assert cache.load_execution("k5") is not None


def test_version_1_results_folder_regrades_without_any_kernel(
    graded: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An output folder as the version-1 grader left it (results of schema version 1,
    no batch.json) is re-scored from its cached executions and written in version 2."""
    from tests.test_batch import as_version_1

    subs, _ = graded
    out = copy_out(graded, tmp_path)
    before = scores(out)
    (out / "batch.json").unlink()
    for path in (out / "results").glob("*.json"):
        path.write_text(json.dumps(as_version_1(json.loads(path.read_text()))))
        index = out / ".cache" / "results" / path.name
        entry = json.loads(index.read_text())
        entry["sha256"] = grader.cache.file_sha256(path)  # intact, only of an older version
        index.write_text(json.dumps(entry))
    no_kernels(monkeypatch)
    text = regrade(subs, out, "hw3")
    assert "(0 executed, 3 re-scored from cached runs, 0 unchanged)" in text
    assert scores(out) == before
    for path in (out / "results").glob("*.json"):
        assert json.loads(path.read_text())["schema_version"] == 2
    assert (out / "batch.json").is_file()


def test_gradebook_carries_overrides_without_reports(
    graded: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    subs, _ = graded
    out = copy_out(graded, tmp_path)
    (out / "overrides.yaml").write_text(
        "- {student: pool_ceil, check: Q1a, points: 0, comment: Not the question asked.}\n"
    )
    no_kernels(monkeypatch)
    assert "3 unchanged" in regrade(subs, out, "hw3")  # --no-reports
    record = json.loads((out / "results" / "pool_ceil.json").read_text())
    q1a = next(c for q in record["questions"] for c in q["checks"] if c["id"] == "Q1a")
    assert q1a["score"] > 0 and "override" not in q1a  # the result file is never changed
    book = {
        row.split(",")[0]: row.split(",")
        for row in (out / "gradebook.csv").read_text().splitlines()[1:]
    }
    assert float(book["pool_ceil"][-2]) == pytest.approx(record["score"] - q1a["score"])
    solution = json.loads((out / "results" / "solution.json").read_text())
    assert float(book["solution"][-2]) == pytest.approx(solution["score"])

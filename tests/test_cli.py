from pathlib import Path

import pytest

from grader.cli import main


def test_missing_folder_exits_2_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([str(tmp_path / "nope"), "--rubric", "hw3", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no such folder of submissions" in err


def test_bad_rubric_exits_2_naming_file_and_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "assignment: x\ntitle: T\nreference: hw3\nnotebook: x.ipynb\nquestions: []\nextra: 1\n"
    )
    (tmp_path / "subs" / "a").mkdir(parents=True)
    assert main([str(tmp_path / "subs"), "--rubric", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{bad}:6: unknown key 'extra'" in err


def test_validate_bad_rubric(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(tmp_path / "missing.yaml")]) == 2
    assert "no such rubric file" in capsys.readouterr().err


def test_validate_hw3_solution_earns_full_marks(capsys: pytest.CaptureFixture[str]) -> None:
    """CI on reference solutions: the rubric's own solution earns every automatic point."""
    assert main(["validate", "hw3"]) == 0
    out = capsys.readouterr().out
    assert "rubric OK" in out and "solution solution: 90/90" in out


def test_no_kernel_can_start_exits_2_before_grading(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A machine where no sandboxed kernel starts must not hand every student a zero."""
    import grader.sandbox.readiness
    from grader.sandbox import KernelStartError

    def broken(*args: object, **kwargs: object) -> None:
        raise KernelStartError("bwrap: execvp /x/.venv/bin/python3.11: No such file")

    monkeypatch.setattr(grader.sandbox.readiness, "notebook_in_session", broken)
    (tmp_path / "subs" / "a").mkdir(parents=True)
    out = tmp_path / "out"
    assert main([str(tmp_path / "subs"), "--rubric", "hw3", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "cannot start a sandboxed Python kernel here" in err and "execvp" in err
    assert not list((out / "results").glob("*.json"))


def test_gpus_for_a_rubric_without_devices_gpu_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "subs").mkdir()
    assert main([str(tmp_path / "subs"), "--rubric", "hw3", "--gpus", "all"]) == 2
    assert "does not declare `devices: gpu`" in capsys.readouterr().err


def test_gpus_takes_all_or_a_count(capsys: pytest.CaptureFixture[str]) -> None:
    from grader.cli import _grade_parser

    assert _grade_parser().parse_args(["s", "--rubric", "r"]).gpus == 0
    assert _grade_parser().parse_args(["s", "--rubric", "r", "--gpus", "all"]).gpus is None
    assert _grade_parser().parse_args(["s", "--rubric", "r", "--gpus", "2"]).gpus == 2
    with pytest.raises(SystemExit):
        _grade_parser().parse_args(["s", "--rubric", "r", "--gpus", "some"])


def test_gpus_with_a_cluster_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "subs").mkdir()
    rubric = tmp_path / "r.yaml"
    rubric.write_text(
        "assignment: x\ntitle: T\nreference: hw3\nnotebook: x.ipynb\ndevices: gpu\n"
        "questions:\n  - id: q1\n    checks:\n      - {id: a, type: value, answer: a, points: 1}\n"
    )
    argv = [str(tmp_path / "subs"), "--rubric", str(rubric), "--gpus", "1"]
    assert main([*argv, "--cluster", "tcp://127.0.0.1:1"]) == 2
    assert "GPU workers are not supported yet" in capsys.readouterr().err

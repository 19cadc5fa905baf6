"""grader/cases.py: cases that vary every size independently, and the references' cases
built or audited with it (a bug that uses one size for another must fail somewhere)."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pytest

from grader.cases import (
    case_names,
    cover,
    distinct,
    equal_everywhere,
    fits,
    large_logits,
    nonzero,
    output_size,
)
from reference import hw1, hw2, hw4

CONV_AXES: dict[str, list[int]] = {
    "N": [1, 2],
    "C": [1, 3],
    "H": [4, 5, 6],
    "W": [4, 5, 6],
    "F": [2, 4],
    "HH": [2, 3],
    "WW": [2, 3],
    "stride": [1, 2],
    "pad": [0, 1],
}
CONV_FAMILIES: dict[str, Callable[[Mapping[str, int]], bool]] = {
    "non-square output": lambda s: s["out_h"] != s["out_w"],
    "batch of one": lambda s: s["N"] == 1,
    "pad 0": lambda s: s["pad"] == 0,
    "stride 2": lambda s: s["stride"] == 2,
    "C = 1": lambda s: s["C"] == 1,
}


def conv_sizes(s: Mapping[str, int]) -> dict[str, int]:
    return {
        "out_h": output_size(s["H"], s["HH"], s["stride"], s["pad"]),
        "out_w": output_size(s["W"], s["WW"], s["stride"], s["pad"]),
    }


def conv_valid(s: Mapping[str, int]) -> bool:
    return fits(s["H"], s["HH"], s["stride"], s["pad"]) and fits(
        s["W"], s["WW"], s["stride"], s["pad"]
    )


def conv_cover(**kw: Any) -> list[Any]:
    return cover(CONV_AXES, derived=conv_sizes, valid=conv_valid, families=CONV_FAMILIES, **kw)


def test_output_size_and_fits() -> None:
    assert output_size(7, 3, stride=2) == 3
    assert output_size(5, 3, stride=1, pad=1) == 5
    assert fits(7, 3, stride=2) and not fits(6, 3, stride=2) and not fits(2, 3)
    assert fits(6, 3, stride=1, pad=1)


def test_cover_meets_every_requirement() -> None:
    shapes = conv_cover()
    sizes = [s.sizes for s in shapes]
    names = [*CONV_AXES, "out_h", "out_w"]
    # every pair of sizes differs in some case
    assert equal_everywhere(sizes) == []
    for a, b in itertools.combinations(names, 2):
        assert any(s[a] != s[b] for s in sizes), (a, b)
    assert any(s["out_h"] != s["out_w"] for s in sizes)  # a non-square output
    assert any(s["N"] == 1 for s in sizes) and any(s["N"] > 1 for s in sizes)
    assert {s["pad"] for s in sizes} == {0, 1}
    assert any(s["stride"] > 1 for s in sizes)
    assert any(s["C"] == 1 for s in sizes)
    for s in sizes:  # every case keeps the promise, and the derived sizes are right
        assert conv_valid(s)
        assert (s["out_h"], s["out_w"]) == tuple(conv_sizes(s).values())
    # families: as the rules say, present and absent, told apart, one case in none
    members = {}
    for family, rule in CONV_FAMILIES.items():
        members[family] = frozenset(i for i, s in enumerate(sizes) if rule(s))
        assert 0 < len(members[family]) < len(sizes), family
        assert all((family in shape.families) == rule(shape.sizes) for shape in shapes)
    assert len(set(members.values())) == len(members)
    assert any(not shape.families for shape in shapes)
    assert len(shapes) <= 8


def test_cover_is_deterministic_small_first_and_respects_pairs() -> None:
    first, again = conv_cover(), conv_cover()
    assert [s.sizes for s in first] == [s.sizes for s in again]
    costs = [np.prod([max(1, s[a]) for a in CONV_AXES]) for s in first]  # the default
    assert costs == sorted(costs)
    only = cover({"H": [3, 4], "W": [3, 4]}, pairs=[("H", "W")])
    assert len(only) == 1 and only[0]["H"] != only[0]["W"]


def test_cover_says_what_it_cannot_meet() -> None:
    with pytest.raises(ValueError, match="H ≠ W"):
        cover({"H": [4], "W": [4]})
    with pytest.raises(ValueError, match="a case that is not 'small'"):
        cover({"H": [4, 5]}, families={"small": lambda s: s["H"] < 9})
    with pytest.raises(ValueError, match="no combination"):
        cover({"H": [4, 5]}, valid=lambda s: False)
    with pytest.raises(ValueError, match="max_cases 1"):
        conv_cover(max_cases=1)
    with pytest.raises(ValueError, match="names of axes"):
        cover({"H": [4, 5]}, derived=lambda s: {"H": 1})


def test_case_names_are_the_families_and_unique() -> None:
    shapes = conv_cover()
    names = case_names(shapes, plain="square")
    assert len(set(names)) == len(names)
    assert "square" in names
    for name, shape in zip(names, shapes, strict=True):
        assert name == (", ".join(shape.families) or "square")


def test_equal_everywhere_finds_the_old_blind_spot() -> None:
    # HW2's conv cases before issue 11: every output square.
    old = [
        {"H": 5, "W": 5, "HH": 3, "WW": 3, "out_h": 5, "out_w": 5},
        {"H": 7, "W": 7, "HH": 3, "WW": 3, "out_h": 3, "out_w": 3},
        {"H": 4, "W": 5, "HH": 2, "WW": 3, "out_h": 7, "out_w": 7},
    ]
    assert ("out_h", "out_w") in equal_everywhere(old)
    assert ("H", "W") not in equal_everywhere(old)
    assert equal_everywhere([]) == []


def test_value_generators_keep_the_handouts_promises() -> None:
    rng = np.random.default_rng(0)
    x = nonzero(rng, 40, 50, scale=2.0)
    assert x.dtype == np.float64 and x.shape == (40, 50)
    assert np.abs(x).min() >= 0.1 and np.abs(x).max() < 2.1
    assert (x > 0).any() and (x < 0).any()
    d = distinct(rng, 3, 4, 5, 6)
    assert d.dtype == np.float64 and d.shape == (3, 4, 5, 6)
    assert len(np.unique(d)) == d.size and np.abs(d).min() >= 0.05
    assert len(np.unique(np.abs(d))) == d.size  # no ties even by magnitude
    big = large_logits(rng, 6, 5)
    assert big.min() > 1000 - 55 and big.max() < 1000 + 55
    with np.errstate(over="ignore"):
        assert np.isinf(np.exp(big)).all()  # overflows without the max subtraction


# ------------------------------------------------------------------ the references' cases


def conv_case_sizes(case: dict[str, Any]) -> dict[str, int]:
    x, w, _, param = case["args"]
    n, c, h, wd = x.shape
    f, _, hh, ww = w.shape
    return {
        "N": n,
        "C": c,
        "H": h,
        "W": wd,
        "F": f,
        "HH": hh,
        "WW": ww,
        "out_h": case["dout"].shape[2],
        "out_w": case["dout"].shape[3],
        "stride": param["stride"],
        "pad": param["pad"],
    }


def pool_case_sizes(case: dict[str, Any]) -> dict[str, int]:
    x, param = case["args"]
    n, c, h, w = x.shape
    return {
        "N": n,
        "C": c,
        "H": h,
        "W": w,
        "ph": param["pool_height"],
        "pw": param["pool_width"],
        "stride": param["stride"],
        "out_h": case["dout"].shape[2],
        "out_w": case["dout"].shape[3],
    }


def test_hw2_conv_cases_vary_every_size() -> None:
    cases = hw2.conv_cases()
    sizes = [conv_case_sizes(c) for c in cases]
    assert equal_everywhere(sizes) == []
    assert any(s["out_h"] != s["out_w"] for s in sizes)
    assert any(s["HH"] != s["WW"] for s in sizes) and any(s["H"] != s["W"] for s in sizes)
    assert {s["pad"] == 0 for s in sizes} == {True, False}
    assert any(s["stride"] > 1 for s in sizes)
    assert any(s["N"] == 1 for s in sizes) and any(s["C"] == 1 for s in sizes)
    for case, s in zip(cases, sizes, strict=True):
        assert fits(s["H"], s["HH"], s["stride"], s["pad"])
        assert fits(s["W"], s["WW"], s["stride"], s["pad"])
        out, _ = hw2.conv_forward_naive(*case["args"])
        assert out.shape == case["dout"].shape
        for a in (*case["args"][:3], case["dout"]):
            assert a.dtype == np.float64 and np.all(a != 0)
    names = [c["name"] for c in cases]
    assert len(set(names)) == len(names)
    assert len(cases) <= 6  # every case is a sandboxed call per student


def test_hw2_pool_cases_vary_every_size_without_ties() -> None:
    cases = hw2.max_pool_cases()
    sizes = [pool_case_sizes(c) for c in cases]
    assert equal_everywhere(sizes) == []
    assert any(s["out_h"] != s["out_w"] for s in sizes)
    assert any(s["ph"] != s["pw"] for s in sizes)
    assert {s["stride"] < max(s["ph"], s["pw"]) for s in sizes} == {True, False}  # overlap
    for case, s in zip(cases, sizes, strict=True):
        assert fits(s["H"], s["ph"], s["stride"]) and fits(s["W"], s["pw"], s["stride"])
        x = case["args"][0]
        assert x.dtype == np.float64 and len(np.unique(x)) == x.size
        out, _ = hw2.max_pool_forward_naive(*case["args"])
        assert out.shape == case["dout"].shape


def _conv_out_h_for_w(x: np.ndarray, w: np.ndarray, b: np.ndarray, p: dict[str, int]) -> Any:
    """A student's conv forward whose output width is computed from the height."""
    s, pad = p["stride"], p["pad"]
    _, _, h, _ = x.shape
    f, _, hh, ww = w.shape
    ho = wo = 1 + (h + 2 * pad - hh) // s
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    out = np.zeros((x.shape[0], f, ho, wo))
    for i in range(ho):
        for j in range(wo):
            window = xp[:, :, i * s : i * s + hh, j * s : j * s + ww]
            out[:, :, i, j] = np.tensordot(window, w, axes=([1, 2, 3], [1, 2, 3])) + b
    return out


def test_hw2_conv_cases_see_out_h_used_for_out_w() -> None:
    right = wrong = 0
    for case in hw2.conv_cases():
        expected, _ = hw2.conv_forward_naive(*case["args"])
        try:
            got = _conv_out_h_for_w(*case["args"])
        except ValueError:
            wrong += 1
            continue
        ok = got.shape == expected.shape and np.allclose(got, expected, rtol=1e-9)
        right, wrong = right + ok, wrong + (not ok)
        if "non-square output" not in case["families"]:
            assert ok, case["name"]
    assert wrong >= 1 and right >= 1


def test_hw2_affine_batchnorm_and_softmax_sizes_differ() -> None:
    affine = [
        dict(zip(("N", "D", "M"), (c["args"][0].shape[0], *c["args"][1].shape), strict=True))
        for c in hw2.affine_cases()
    ]
    assert equal_everywhere(affine) == []
    rank4 = [c["args"][0].shape for c in hw2.affine_cases() if c["args"][0].ndim == 4]
    assert rank4 and any(len(set(s[1:])) == 3 for s in rank4)
    bn = [dict(zip(("N", "D"), c["args"][0].shape, strict=True)) for c in hw2.batchnorm_cases()]
    assert all(s["N"] != s["D"] for s in bn) and any(s["D"] > s["N"] for s in bn)
    soft = hw2.softmax_cases()
    assert all(c["args"][0].shape[0] != c["args"][0].shape[1] for c in soft)
    assert any("large logits" in c.get("families", ()) for c in soft)


# ------------------------------------------------------------------ audits of HW1 and HW4


def test_hw1_cases_leave_no_two_sizes_equal_everywhere() -> None:
    forward = [
        {
            "N": c["args"][1].shape[0],
            "D": c["args"][1].shape[1],
            "H": c["args"][0]["layer_1_weights"].shape[1],
            "C": c["args"][0]["layer_2_weights"].shape[1],
        }
        for c in hw1.forward_pass_cases()
    ]
    assert equal_everywhere(forward) == []
    for generator in (
        hw1.cross_entropy_cases,
        hw1.calculate_accuracy_cases,
        hw1.mean_absolute_error_cases,
    ):
        sizes = [dict(zip(("N", "K"), c["args"][0].shape, strict=True)) for c in generator()]
        assert equal_everywhere(sizes) == [], generator.__name__
        assert any(s["N"] == 1 for s in sizes), generator.__name__


def test_hw4_batchnorm_cases_leave_no_two_sizes_equal_everywhere() -> None:
    sizes = [dict(zip(("N", "D"), c["args"][0].shape, strict=True)) for c in hw4.batchnorm_cases()]
    assert equal_everywhere(sizes) == []
    assert all(s["N"] != s["D"] for s in sizes)

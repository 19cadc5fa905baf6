"""Test cases that vary every dimension independently: a helper for reference authors.

A function check is only as good as its cases. Code that uses one size where another
belongs (``out_h`` for ``out_w``, ``pool_height`` for the pool's width, ``N`` for ``D``)
gives the right answer on every case in which the two sizes happen to be equal, so a
reference whose cases are all square passes it. :func:`cover` picks a few small
combinations of named sizes such that

* every pair of sizes (the axes you give and the sizes derived from them, such as a
  convolution's output height and width) differs in at least one case;
* every named *family* of cases (``"batch of one"``, ``"pad 0"``, ``"non-square
  output"``) holds in at least one case and fails in at least one other, and any two
  families are told apart by some case, so that when a function fails on exactly the
  cases of one family, that family names the cause (the ``function`` check's message
  says so); one case is in no family (the ordinary case the others are edge cases of);
* every case is one the handout defines (``valid``: e.g. a stride that divides the
  padded size minus the filter size, where the handout leaves a remainder undefined).

A reference module (``reference/<hw>.py``) uses it in its case generators::

    from grader.cases import cover, fits, nonzero, output_size

    def conv_sizes(s):
        return {"out_h": output_size(s["H"], s["HH"], s["stride"], s["pad"]),
                "out_w": output_size(s["W"], s["WW"], s["stride"], s["pad"])}

    shapes = cover(
        {"N": [1, 2], "C": [1, 3], "H": [4, 5], "W": [4, 6], "F": [2, 3],
         "HH": [2, 3], "WW": [2, 3], "stride": [1, 2], "pad": [0, 1]},
        derived=conv_sizes,
        valid=lambda s: fits(s["H"], s["HH"], s["stride"], s["pad"])
        and fits(s["W"], s["WW"], s["stride"], s["pad"]),
        families={"non-square output": lambda s: s["out_h"] != s["out_w"],
                  "batch of one": lambda s: s["N"] == 1, "pad 0": lambda s: s["pad"] == 0},
    )
    # each shape: shape["H"], shape.sizes, shape.families; case_names(shapes) names
    # them by their families ("non-square output, pad 0"), for the cases' "name" and
    # their "families" key

The value generators draw what handouts promise about values: :func:`nonzero` (no exact
zeros, so ReLU's and dropout's gradients are unambiguous), :func:`distinct` (no ties,
so none inside a pooling window), :func:`large_logits` (scores whose exponential
overflows unless the maximum is subtracted first). All return float64 arrays.
:func:`equal_everywhere` audits hand-written cases: the pairs of sizes that never differ.

The expected values (and the executions that used them) are cached by the hash of the
reference module's source, which does not cover this module: after changing it, run
``grade validate`` (it recomputes and re-caches the values) and grade with ``--force``.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

__all__ = [
    "Shape",
    "case_names",
    "cover",
    "distinct",
    "equal_everywhere",
    "fits",
    "large_logits",
    "nonzero",
    "output_size",
]

Sizes = Mapping[str, int]
Rule = Callable[[Sizes], bool]
FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Shape:
    """One chosen combination: every size by name, and the families it belongs to (in
    the order the families were given)."""

    sizes: Mapping[str, int]
    families: tuple[str, ...] = field(default=())

    def __getitem__(self, axis: str) -> int:
        return self.sizes[axis]


def case_names(shapes: Sequence[Shape], plain: str = "typical sizes") -> list[str]:
    """A name in words for each shape: its families (``"batch of one, pad 0"``), or
    ``plain`` for the case in no family; a repeated name gets a number."""
    names: list[str] = []
    for shape in shapes:
        base = ", ".join(shape.families) or plain
        count = sum(1 for n in names if n == base or n.startswith(base + " ("))
        names.append(base if count == 0 else f"{base} ({count + 1})")
    return names


def output_size(size: int, window: int, stride: int = 1, pad: int = 0) -> int:
    """The number of window positions along one axis: ``(size + 2·pad − window) //
    stride + 1`` (a convolution's or a pooling's output size, floor)."""
    return (size + 2 * pad - window) // stride + 1


def fits(size: int, window: int, stride: int = 1, pad: int = 0) -> bool:
    """True when the window fits and the stride divides ``size + 2·pad − window``: the
    windows then cover the padded input exactly (the CS231n layers assert this)."""
    span = size + 2 * pad - window
    return span >= 0 and span % stride == 0


def _requirements(
    sizes: Sizes, pairs: Sequence[tuple[str, str]], families: Mapping[str, Rule]
) -> tuple[list[bool], tuple[str, ...]]:
    """Which requirements one combination meets, in a fixed order: each pair differs;
    each family holds; each family fails; each pair of families is told apart; no
    family holds."""
    member = {name: bool(rule(sizes)) for name, rule in families.items()}
    met = [sizes[a] != sizes[b] for a, b in pairs]
    met += [member[f] for f in families]
    met += [not member[f] for f in families]
    met += [member[f] != member[g] for f, g in itertools.combinations(families, 2)]
    met.append(not any(member.values()))
    return met, tuple(f for f in families if member[f])


def _requirement_names(pairs: Sequence[tuple[str, str]], families: Mapping[str, Rule]) -> list[str]:
    names = [f"{a} ≠ {b}" for a, b in pairs]
    names += [f"a case that is {f!r}" for f in families]
    names += [f"a case that is not {f!r}" for f in families]
    names += [
        f"a case that is {f!r} or {g!r} but not both"
        for f, g in itertools.combinations(families, 2)
    ]
    names.append("a case in no family")
    return names


def cover(
    axes: Mapping[str, Sequence[int]],
    *,
    derived: Callable[[Sizes], Mapping[str, int]] | None = None,
    valid: Rule | None = None,
    families: Mapping[str, Rule] | None = None,
    pairs: Sequence[tuple[str, str]] | None = None,
    cost: Callable[[Sizes], float] | None = None,
    max_cases: int = 8,
) -> list[Shape]:
    """A few small combinations of sizes that together meet every requirement.

    ``axes`` maps each size to its candidate values (keep them few and small: every
    combination is examined). ``derived`` computes further sizes from a combination (a
    convolution's ``out_h``, ``out_w``); ``valid`` rejects combinations the handout
    rules out. The requirements: each pair in ``pairs`` (default: every pair of axes and
    derived sizes) differs in some case; each family holds in some case and fails in
    another; any two families are told apart by some case (one holds, the other not);
    some case is in no family.

    The choice is greedy (the combination meeting the most unmet requirements, the
    cheapest on a tie; ``cost`` defaults to the product of the axes' sizes), hence
    deterministic. The cases come back cheapest first, so the first failing case a
    message names is a small one. Raises ValueError naming the requirements no valid
    combination meets, or when more than ``max_cases`` cases would be needed.
    """
    fams: Mapping[str, Rule] = families or {}
    names = list(axes)
    combos: list[dict[str, int]] = []
    for values in itertools.product(*(axes[a] for a in names)):
        sizes = dict(zip(names, values, strict=True))
        if derived is not None:
            extra = dict(derived(sizes))
            clash = sorted(set(extra) & set(sizes))
            if clash:
                raise ValueError(f"derived sizes {clash} have the names of axes")
            sizes.update(extra)
        if valid is None or valid(sizes):
            combos.append(sizes)
    if not combos:
        raise ValueError("no combination of the candidate sizes is valid")
    pair_list = list(pairs) if pairs is not None else list(itertools.combinations(combos[0], 2))
    unknown = sorted({a for pair in pair_list for a in pair} - set(combos[0]))
    if unknown:
        raise ValueError(f"pairs name unknown sizes: {unknown}")

    def default_cost(sizes: Sizes) -> float:
        return float(math.prod(max(1, sizes[a]) for a in names))

    price = cost or default_cost
    # Each combination's met requirements as the bits of an int: the greedy loop is then
    # a popcount per combination and step.
    masks: list[int] = []
    members: list[tuple[str, ...]] = []
    for sizes in combos:
        met, belongs = _requirements(sizes, pair_list, fams)
        masks.append(sum(1 << i for i, ok in enumerate(met) if ok))
        members.append(belongs)
    labels = _requirement_names(pair_list, fams)
    reachable = 0
    for mask in masks:
        reachable |= mask
    unmet = [label for i, label in enumerate(labels) if not reachable >> i & 1]
    if unmet:
        raise ValueError("no valid combination gives " + "; ".join(unmet))
    costs = [price(sizes) for sizes in combos]
    todo = reachable
    chosen: list[int] = []
    while todo:
        best = max(range(len(combos)), key=lambda i: ((masks[i] & todo).bit_count(), -costs[i]))
        chosen.append(best)
        todo &= ~masks[best]
    # Greedy picks can become redundant once later picks cover them: drop those, the
    # dearest first.
    for i in sorted(chosen, key=lambda i: -costs[i]):
        others = 0
        for j in chosen:
            if j != i:
                others |= masks[j]
        if others == reachable:
            chosen.remove(i)
    if len(chosen) > max_cases:
        raise ValueError(
            f"{len(chosen)} cases are needed to meet every requirement (max_cases "
            f"{max_cases}): fewer pairs or families, or wider candidate sizes"
        )
    chosen.sort(key=lambda i: (costs[i], i))
    return [Shape(sizes=dict(combos[i]), families=members[i]) for i in chosen]


def equal_everywhere(
    cases: Sequence[Sizes], pairs: Sequence[tuple[str, str]] | None = None
) -> list[tuple[str, str]]:
    """The pairs of sizes that are equal in every case: code using one for the other
    passes all of them (an audit of hand-written cases). ``pairs`` defaults to every pair
    of sizes the first case names."""
    if not cases:
        return []
    pair_list = list(pairs) if pairs is not None else list(itertools.combinations(cases[0], 2))
    return [(a, b) for a, b in pair_list if all(c[a] == c[b] for c in cases)]


# ------------------------------------------------------------------ values


def nonzero(rng: np.random.Generator, *shape: int, scale: float = 1.0) -> FloatArray:
    """Values of either sign with ``|v|`` in ``[0.05, 1.05) · scale``: never exactly
    zero, never near zero (ReLU's kink, dropout's ``out / x``)."""
    magnitude = rng.uniform(0.05, 1.05, size=shape)
    sign = rng.choice([-1.0, 1.0], size=shape)
    out: FloatArray = magnitude * sign * scale
    return out


def distinct(rng: np.random.Generator, *shape: int, scale: float = 1.0) -> FloatArray:
    """Pairwise distinct values of either sign with ``|v|`` in ``[0.05, 1.05) · scale``:
    no two entries tie (so no tie inside a pooling window) and none is zero. The
    magnitudes sit one to a slot of width ``1 / size``, jittered inside their slot."""
    n = math.prod(shape)
    slots = rng.permutation(n) + rng.uniform(0.25, 0.75, size=n)
    sign = rng.choice([-1.0, 1.0], size=n)
    out: FloatArray = ((0.05 + slots / n) * sign * scale).reshape(shape)
    return out


def large_logits(
    rng: np.random.Generator, *shape: int, level: float = 1000.0, spread: float = 50.0
) -> FloatArray:
    """Scores around ``level`` (``level ± spread·[0.05, 1.05)``): ``exp`` of any of them
    overflows float64 when ``level`` is above about 710, so a softmax that does not
    subtract the maximum first returns inf or nan."""
    out: FloatArray = level + nonzero(rng, *shape, scale=spread)
    return out

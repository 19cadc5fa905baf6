"""YAML loading that remembers where every key and value came from.

Rubric errors must name the line at fault; PyYAML's composed node tree carries the
marks, so we build plain Python data from it and keep a map from each path to its line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

Path_ = tuple[str | int, ...]


def load_with_lines(path: Path) -> tuple[Any, dict[Path_, int]]:
    """Parse a YAML file into plain data plus a map from key paths to 1-based lines."""
    text = path.read_text(encoding="utf-8")
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc)
        from grader.errors import RubricError

        raise RubricError(path, f"not valid YAML: {problem}", line) from exc
    lines: dict[Path_, int] = {}
    if node is None:
        return None, lines
    return _build(node, (), lines), lines


def _build(node: yaml.Node, here: Path_, lines: dict[Path_, int]) -> Any:
    lines.setdefault(here, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = yaml.SafeLoader(  # scalars keep YAML's own typing (ints, bools)
                ""
            ).construct_object(key_node)
            lines[(*here, key)] = key_node.start_mark.line + 1
            out[key] = _build(value_node, (*here, key), lines)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_build(item, (*here, i), lines) for i, item in enumerate(node.value)]
    return yaml.SafeLoader("").construct_object(node)


def line_of(lines: dict[Path_, int], loc: Path_) -> int | None:
    """The line of the deepest known prefix of ``loc``."""
    for end in range(len(loc), -1, -1):
        if loc[:end] in lines:
            return lines[loc[:end]]
    return None

"""The reference pages of the documentation, generated from the code so they cannot drift.

``python -m grader.docs [DIR]`` writes ``DIR/*.md`` (default ``docs/reference``):

* ``rubric.md``: every rubric key: the top level, a question, the keys every check
  accepts and each registered check type's own (:data:`grader.checks.REGISTRY`), from the
  pydantic models: types, defaults, bounds, and each field's description;
* ``limits.md``: the limits a rubric may set and the grader's own
  (:mod:`grader.sandbox.limits`);
* ``overrides.md``: the keys of an ``overrides.yaml`` entry (:mod:`grader.overrides`);
* ``results.md``: ``results/<student>.json`` and ``batch.json``, from their JSON Schemas;
* ``cli.md``: every verb of ``grade`` and its options, from the argparse parsers.

A field's description is its pydantic ``Field(description=...)`` or else its attribute
docstring (a string literal on the line after the field, or ``#:`` comment lines just
above it), read from the source. ``--check`` writes nothing and exits 1 naming the pages
that differ from what is on disk (the test ``tests/docs/test_reference.py`` does the
same), and :func:`undocumented` lists the fields with no description.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import dataclasses
import functools
import inspect
import json
import os
import re
import sys
import textwrap
import types
import typing
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any
from unittest import mock

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from grader.atomic import write_text_atomic

#: Where the pages live in a checkout, relative to the repository root.
DEFAULT_DIR = Path(__file__).resolve().parent.parent / "docs" / "reference"
#: The command that refreshes them, said by every page and by the drift test.
COMMAND = "python -m grader.docs"
MISSING = "**undocumented**"

# --------------------------------------------------------------------------------------
# Descriptions read from the source
# --------------------------------------------------------------------------------------


def attribute_docs(cls: type) -> dict[str, str]:
    """Each field's attribute docstring in ``cls`` and its bases (the nearest wins): a
    string literal right after the field, or ``#:`` comment lines right above it."""
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if klass.__module__ in ("builtins", "typing") or klass.__module__.startswith("pydantic"):
            continue
        docs.update(_own_attribute_docs(klass))
    return docs


@functools.cache  # reading a class's source is slow, and every field of it asks
def _own_attribute_docs(klass: type) -> dict[str, str]:
    try:
        lines, _ = inspect.getsourcelines(klass)
    except (OSError, TypeError):
        return {}
    source = textwrap.dedent("".join(lines))
    tree = ast.parse(source)
    node = tree.body[0]
    if not isinstance(node, ast.ClassDef):
        return {}
    text_lines = source.splitlines()
    found: dict[str, str] = {}
    body = node.body
    for i, stmt in enumerate(body):
        if not (isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name)):
            continue
        name = stmt.target.id
        after = body[i + 1] if i + 1 < len(body) else None
        if (
            isinstance(after, ast.Expr)
            and isinstance(after.value, ast.Constant)
            and isinstance(after.value.value, str)
        ):
            found[name] = inspect.cleandoc(after.value.value)
            continue
        comments: list[str] = []
        row = stmt.lineno - 2  # the line above, 0-based
        while row >= 0 and text_lines[row].strip().startswith("#:"):
            comments.insert(0, text_lines[row].strip()[2:].strip())
            row -= 1
        if comments:
            found[name] = " ".join(comments)
    return found


def description(model: type[BaseModel], name: str, info: FieldInfo) -> str | None:
    """A pydantic field's description: ``Field(description=...)``, else its docstring."""
    if info.description:
        return inspect.cleandoc(info.description)
    return attribute_docs(model).get(name)


def _one_line(text: str | None) -> str:
    """A description for a table cell: one line, pipes escaped."""
    if not text:
        return MISSING
    return _cell(text)


def _cell(text: str) -> str:
    """Text for a Markdown table cell: one line, pipes escaped, angle brackets kept as
    text (``results/<student>.json`` is no HTML tag)."""
    return " ".join(text.split()).replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")


# --------------------------------------------------------------------------------------
# Pydantic models → tables
# --------------------------------------------------------------------------------------


def _anchor(model: type) -> str:
    return model.__name__.lower()


def type_text(annotation: Any, links: dict[type, str]) -> str:
    """A field's type in words, linking models that have their own section."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Annotated:
        return type_text(args[0], links)
    if origin is typing.Literal:
        return " \\| ".join(f"`{json.dumps(a)}`" for a in args)
    if origin in (typing.Union, types.UnionType):
        rest = [a for a in args if a is not type(None)]
        text = " or ".join(type_text(a, links) for a in rest)
        return f"{text} or null" if len(rest) < len(args) else text
    if origin in (list, tuple, Sequence, set, frozenset):
        inner = [a for a in args if a is not Ellipsis]
        return f"list of {type_text(inner[0], links)}" if inner else "list"
    if origin is dict:
        return f"mapping of {type_text(args[1], links)}" if args else "mapping"
    if annotation is Any:
        return "any"
    if isinstance(annotation, type):
        if annotation in links:
            return f"[{annotation.__name__}]({links[annotation]})"
        return {
            str: "string",
            int: "integer",
            float: "number",
            bool: "boolean",
        }.get(annotation, annotation.__name__)
    return str(annotation).replace("typing.", "")


def bounds_text(info: FieldInfo) -> str:
    """The field's constraints (``≥ 0``, ``at least 1 item``, ``matches ^…$``)."""
    words: list[str] = []
    for item in info.metadata:
        for attr, fmt in (
            ("gt", "> {}"),
            ("ge", "≥ {}"),
            ("lt", "< {}"),
            ("le", "≤ {}"),
            ("min_length", "length ≥ {}"),
            ("max_length", "length ≤ {}"),
            ("pattern", "matches `{}`"),
        ):
            value = getattr(item, attr, None)
            if value is not None:
                words.append(fmt.format(value))
    return ", ".join(words)


def default_text(info: FieldInfo) -> str:
    """The default as YAML would spell it, or *required*."""
    if info.is_required():
        return "*required*"
    factory = info.default_factory
    value = factory() if factory is not None else info.default  # type: ignore[call-arg]
    if value is PydanticUndefined:
        return "*required*"
    if isinstance(value, BaseModel):
        return "each key's default"
    return f"`{json.dumps(_plainish(value))}`"


def _plainish(value: Any) -> Any:
    if isinstance(value, tuple | list):
        return [_plainish(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plainish(v) for k, v in value.items()}
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def fields_table(
    model: type[BaseModel],
    links: dict[type, str],
    skip: Sequence[str] = (),
    notes: dict[str, str] | None = None,
) -> list[str]:
    """A Markdown table of a model's fields: key, type, default, description."""
    rows = ["| key | type | default | description |", "| --- | --- | --- | --- |"]
    for name, info in model.model_fields.items():
        if name in skip:
            continue
        kind = type_text(info.annotation, links)
        bounds = bounds_text(info)
        if bounds:
            kind += f" ({bounds})"
        text = (notes or {}).get(name) or _one_line(description(model, name, info))
        rows.append(f"| `{name}` | {kind} | {default_text(info)} | {text} |")
    return rows


def nested_models(model: type[BaseModel]) -> list[type[BaseModel]]:
    """Models used by ``model``'s fields, depth first, each once, in field order."""
    found: list[type[BaseModel]] = []

    def walk(annotation: Any) -> None:
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            if annotation not in found:
                found.append(annotation)
                for info in annotation.model_fields.values():
                    walk(info.annotation)
            return
        for arg in typing.get_args(annotation):
            walk(arg)

    for info in model.model_fields.values():
        walk(info.annotation)
    return found


def _doc(obj: Any) -> str:
    """A class's docstring as Markdown: Sphinx roles (``:mod:`x```) become code spans."""
    text = inspect.cleandoc(obj.__doc__ or "")
    return re.sub(r":(?:mod|func|class|meth|data|attr):`~?([^`]+)`", r"`\1`", text)


def _header(title: str, source: str) -> list[str]:
    return [
        f"# {title}",
        "",
        f"<!-- Generated from {source} by `{COMMAND}`: do not edit; edit the code and run it. -->",
        "",
    ]


# --------------------------------------------------------------------------------------
# The pages
# --------------------------------------------------------------------------------------


def rubric_page() -> str:
    """``rubric.md``: every key of a rubric file, with each registered check type's."""
    from grader.checks import REGISTRY
    from grader.checks.base import CheckSpec
    from grader.rubric import QuestionSpec, RubricFile
    from grader.sandbox import LimitSettings

    links: dict[type, str] = {LimitSettings: "limits.md#limitsettings", QuestionSpec: "#question"}
    # Every other model the top level uses (late:, the long form of an entry, …) gets a
    # section of its own, so a new nested model is documented without touching this.
    sections = [m for m in nested_models(RubricFile) if m not in links]
    links.update({m: f"#{m.__name__.lower()}" for m in sections})
    out = _header("Rubric reference", "grader/rubric.py and grader/checks/")
    out += [
        "A rubric is a YAML file, `NAME.yaml`; paths in it are relative to its folder. "
        "Unknown keys are errors naming the file and the line. The guide "
        "[Writing a rubric](../guide/rubric.md) explains how the pieces fit.",
        "",
        "## Top level",
        "",
        _doc(RubricFile),
        "",
        *fields_table(
            RubricFile,
            links,
            notes={"questions": "The questions, in order: see [Question](#question)."},
        ),
        "",
    ]
    for model in sections:
        out += [f"## {model.__name__}", "", _doc(model), "", *fields_table(model, links), ""]
    out += [
        "## Question",
        "",
        _doc(QuestionSpec),
        "",
        *fields_table(
            QuestionSpec,
            links,
            notes={
                "checks": "The checks: mappings whose `type:` is one of the "
                "[check types](#check-types)."
            },
        ),
        "",
        "## Keys every check accepts",
        "",
        _doc(CheckSpec),
        "",
        *fields_table(CheckSpec, links, notes={"type": "The check type: one of the names below."}),
        "",
        "## Check types",
        "",
        "Registered in `grader/checks/` (one module per type): "
        + ", ".join(f"[`{name}`](#{name})" for name in sorted(REGISTRY))
        + ".",
        "",
    ]
    base = set(CheckSpec.model_fields)
    for name in sorted(REGISTRY):
        spec = REGISTRY[name].spec
        out += [f"### {name}", "", _doc(spec), ""]
        needs = _capabilities(spec)
        if needs:
            out += [needs, ""]
        own = {m: f"#{name}-{m.__name__.lower()}" for m in nested_models(spec) if m not in links}
        out += [*fields_table(spec, {**links, **own}, skip=sorted(base)), ""]
        for model in own:
            out += [
                f"#### {name}: {model.__name__}",
                "",
                _doc(model),
                "",
                *fields_table(model, {**links, **own}),
                "",
            ]
    return "\n".join(out).rstrip() + "\n"


def _capabilities(spec: Any) -> str:
    words = []
    if spec.needs_module:
        words.append("calls the student's module (the rubric needs `module:`)")
    if spec.needs_notebook:
        words.append("reads the notebook's Markdown (the rubric needs `notebook:`)")
    if not spec.needs_expected:
        words.append("needs no value from the reference")
    if spec.needs_review:
        words.append("is marked by an instructor (status `manual`; a suggested mark meanwhile)")
    return ("This check " + "; ".join(words) + ".") if words else ""


def limits_page() -> str:
    """``limits.md``: the limits a rubric may set, then the grader's own."""
    from grader.sandbox import ExecutionLimits, LimitSettings

    out = _header("Limits", "grader/sandbox/limits.py")
    own = [n for n in ExecutionLimits.model_fields if n not in LimitSettings.model_fields]
    out += [
        "Every limit of one execution of a submission. Seconds, MiB and counts as named. "
        "The [sandbox guide](../guide/sandbox.md) says what happens when one is hit.",
        "",
        "## LimitSettings",
        "",
        _doc(LimitSettings),
        "",
        "Set them in a rubric under `limits:`, e.g. `limits: {cell_timeout: 30}`.",
        "",
        *fields_table(LimitSettings, {}),
        "",
        "## ExecutionLimits",
        "",
        _doc(ExecutionLimits),
        "",
        "The grader's own limits (no rubric key sets them):",
        "",
        *fields_table(ExecutionLimits, {}, skip=[n for n in LimitSettings.model_fields]),
        "",
    ]
    assert own  # the page would be empty otherwise
    return "\n".join(out).rstrip() + "\n"


def overrides_page() -> str:
    """``overrides.md``: the keys of an entry of ``OUT/overrides.yaml``."""
    from grader import overrides
    from grader.late import LATE_CHECK

    docs = attribute_docs(overrides.Override)
    types_of = {f.name: f.type for f in dataclasses.fields(overrides.Override)}
    out = _header("overrides.yaml", "grader/overrides.py")
    out += [
        f"`OUT/{overrides.OVERRIDES_FILE}` in a `grade` output folder holds the instructor's "
        "marks. The [overrides guide](../guide/overrides.md) shows it in use.",
        "",
        inspect.cleandoc(overrides.__doc__ or ""),
        "",
        "## Keys of an entry",
        "",
        f"The pseudo-check `{LATE_CHECK}` stands for the late penalty.",
        "",
        "| key | type | required | description |",
        "| --- | --- | --- | --- |",
    ]
    for key in overrides.ALLOWED_KEYS:
        kind = str(types_of.get(key, "any")).replace("'", "").replace("|", "\\|")
        required = "yes" if key in overrides.REQUIRED_KEYS else "no"
        out.append(f"| `{key}` | {kind} | {required} | {_one_line(docs.get(key))} |")
    return "\n".join(out).rstrip() + "\n"


SCHEMAS = Path(__file__).resolve().parent / "schema"


def results_page() -> str:
    """``results.md``: the published formats, from ``grader/schema/*.json``."""
    out = _header("Results format", "grader/schema/*.json")
    out += [
        "What `grade` writes in its output folder, as published JSON Schemas (the files "
        "themselves are in `grader/schema/`).",
        "",
    ]
    for name, title in (
        ("result.schema.json", "results/STUDENT.json"),
        ("batch.schema.json", "batch.json"),
    ):
        schema = json.loads((SCHEMAS / name).read_text(encoding="utf-8"))
        out += [f"## {title}", "", f"Schema: `grader/schema/{name}`.", ""]
        if schema.get("description"):
            out += [" ".join(str(schema["description"]).split()), ""]
        out += _schema_tables(schema, "", schema)
        for key, sub in schema.get("$defs", {}).items():
            out += [f"### {title}: `{key}`", ""]
            if sub.get("description"):
                out += [" ".join(str(sub["description"]).split()), ""]
            out += _schema_tables(sub, "", schema)
    return "\n".join(out).rstrip() + "\n"


def _schema_tables(node: dict[str, Any], path: str, root: dict[str, Any]) -> list[str]:
    """A table of an object schema's properties, then one per nested inline object."""
    props = node.get("properties")
    if not isinstance(props, dict):
        kind = _schema_type(node)
        return [f"Type: {kind}.", ""] if kind != "any" else []
    required = set(node.get("required", []))
    rows = [
        *([f"`{path}`:", ""] if path else []),
        "| key | type | required | description |",
        "| --- | --- | --- | --- |",
    ]
    nested: list[str] = []
    for key, sub in props.items():
        text = _cell(str(sub.get("description", ""))) or "—"
        rows.append(
            f"| `{key}` | {_schema_type(sub)} | {'yes' if key in required else 'no'} | {text} |"
        )
        inner = sub.get("items", sub) if sub.get("type") == "array" else sub
        if isinstance(inner, dict) and isinstance(inner.get("properties"), dict):
            suffix = "[]" if inner is not sub else ""
            nested += _schema_tables(inner, f"{path}{'.' if path else ''}{key}{suffix}", root)
    return [*rows, "", *nested]


def _schema_type(node: dict[str, Any]) -> str:
    if "$ref" in node:
        name = str(node["$ref"]).rsplit("/", 1)[-1]
        return f"`{name}`"
    if "const" in node:
        return f"`{json.dumps(node['const'])}`"
    if "enum" in node:
        return " \\| ".join(f"`{json.dumps(v)}`" for v in node["enum"])
    for key in ("anyOf", "oneOf"):
        if key in node:
            return " or ".join(_schema_type(n) for n in node[key])
    kind = node.get("type")
    if kind == "array":
        items = node.get("items")
        return f"array of {_schema_type(items)}" if isinstance(items, dict) else "array"
    if isinstance(kind, list):
        return " or ".join(str(k) for k in kind)
    return str(kind) if kind else "any"


# --------------------------------------------------------------------------------------
# The command line
# --------------------------------------------------------------------------------------


class _Captured(BaseException):
    """Raised instead of parsing: carries the parser a verb built."""

    def __init__(self, parser: argparse.ArgumentParser) -> None:
        super().__init__()
        self.parser = parser


class _Cores(int):
    """Stands for ``default_jobs()``, which depends on the machine generating the page."""

    def __format__(self, spec: str) -> str:
        return "N"

    def __repr__(self) -> str:
        return "N"


@contextlib.contextmanager
def _capturing() -> Iterator[None]:
    """Every argparse parser raises :class:`_Captured` instead of parsing; the CLI's
    machine-dependent default (``--jobs``) reads N; usage lines wrap at 100 columns."""
    from grader import cli

    def grab(self: argparse.ArgumentParser, *args: Any, **kwargs: Any) -> Any:
        raise _Captured(self)

    with contextlib.ExitStack() as stack:
        for name in ("parse_args", "parse_known_args"):
            stack.enter_context(mock.patch.object(argparse.ArgumentParser, name, grab))
        stack.enter_context(mock.patch.object(cli, "default_jobs", lambda: _Cores(1)))
        stack.enter_context(mock.patch.dict(os.environ, {"COLUMNS": "100"}))
        yield


def verb_parsers() -> list[tuple[str, argparse.ArgumentParser]]:
    """``(verb, parser)`` for ``grade`` itself and every verb in ``grader.cli.VERBS``: each
    parser as the CLI builds it, caught when the CLI asks it to parse."""
    from grader import cli

    found = []
    for verb in ("", *cli.VERBS):
        with _capturing():
            try:
                cli.main([verb] if verb else [])
            except _Captured as caught:
                found.append((verb, caught.parser))
                continue
        raise RuntimeError(f"grade {verb}: no argparse parser was asked to parse")
    return found


def cli_page() -> str:
    """``cli.md``: every verb, its usage and its arguments."""
    out = _header("Command line", "the argparse parsers of grader/cli.py and its verbs")
    out += [
        "`grade` grades by default; the first argument may instead name a verb. Exit "
        "status: 0 when the command did its work (whatever the students' scores), 1 when "
        "`grade validate` found problems, 2 when the grader cannot run (a one-line reason "
        "on standard error).",
        "",
    ]
    for verb, parser in verb_parsers():
        title = f"grade {verb}".strip()
        out += [f"## {title}", ""]
        if parser.description:
            out += [" ".join(parser.description.split()), ""]
        usage = " ".join(parser.format_usage().split())
        usage = usage.removeprefix("usage: ")
        out += ["```text", usage, "```", ""]
        out += ["| argument | description | default |", "| --- | --- | --- |"]
        for action in parser._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            metavar = (
                " ".join(action.metavar) if isinstance(action.metavar, tuple) else action.metavar
            )
            name = ", ".join(action.option_strings) or (metavar or action.dest)
            if action.option_strings and action.nargs != 0:
                name += f" {metavar or action.dest.upper()}"
            text = _cell(action.help or "") or MISSING
            if action.choices:
                text += " One of: " + ", ".join(f"`{c}`" for c in action.choices) + "."
            default = action.default
            if action.required or default in (None, False, argparse.SUPPRESS):
                shown = "*required*" if action.required or not action.option_strings else ""
            else:
                shown = f"`{default}`"
            out.append(f"| `{name}` | {text} | {shown} |")
        out.append("")
    return "\n".join(out).rstrip() + "\n"


# --------------------------------------------------------------------------------------
# Writing and checking
# --------------------------------------------------------------------------------------

PAGES: dict[str, Callable[[], str]] = {
    "rubric.md": rubric_page,
    "limits.md": limits_page,
    "overrides.md": overrides_page,
    "results.md": results_page,
    "cli.md": cli_page,
}


def generate() -> dict[str, str]:
    """Every reference page's file name and text."""
    return {name: make() for name, make in PAGES.items()}


def stale(directory: Path) -> list[str]:
    """The pages in ``directory`` that differ from what the code generates now."""
    return [
        name
        for name, text in generate().items()
        if not (directory / name).is_file() or (directory / name).read_text("utf-8") != text
    ]


def undocumented() -> list[str]:
    """``page: key`` of every rubric key, limit, overrides key or CLI argument the pages
    show without a description."""
    return [
        f"{name}: {line.split('|')[1].strip()}"
        for name, text in generate().items()
        for line in text.splitlines()
        if MISSING in line
    ]


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m grader.docs [DIR] [--check]``."""
    parser = argparse.ArgumentParser(
        prog=COMMAND, description="Write the documentation's reference pages from the code."
    )
    parser.add_argument("dir", nargs="?", type=Path, default=DEFAULT_DIR)
    parser.add_argument(
        "--check", action="store_true", help="write nothing; exit 1 if a page is out of date"
    )
    args = parser.parse_args(argv)
    if args.check:
        old = stale(args.dir)
        for name in old:
            print(f"{args.dir / name} is out of date: run `{COMMAND}` to refresh it")
        return 1 if old else 0
    args.dir.mkdir(parents=True, exist_ok=True)
    for name, text in generate().items():
        write_text_atomic(args.dir / name, text)
    print(f"wrote {len(PAGES)} pages to {args.dir}")
    for line in undocumented():
        print(f"undocumented: {line}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""One write path: no module but `closing.transitions` changes a close state (issue 11, item 2).

The source is read as Python syntax, so a new `.update(close_state=…)`, a `save(update_fields=
["close_state"])`, an assignment to `.close_state` or raw SQL that sets it anywhere else fails
this test, whatever its formatting."""

import ast
from collections.abc import Callable
from pathlib import Path

import closeout

SRC = Path(closeout.__file__).parent
THE_WRITE_PATH = SRC / "closing" / "transitions.py"


def _mentions_close_state(node: ast.AST) -> bool:
    return any(isinstance(n, ast.Constant) and n.value == "close_state" for n in ast.walk(node))


def _writes(tree: ast.AST) -> list[int]:
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            name = node.func.attr
            keywords = {k.arg for k in node.keywords}
            if name in ("update", "update_or_create") and "close_state" in keywords:
                lines.append(node.lineno)
            if name == "bulk_update" and any(_mentions_close_state(a) for a in node.args[1:]):
                lines.append(node.lineno)
            if name == "bulk_update" and any(
                k.arg == "fields" and _mentions_close_state(k.value) for k in node.keywords
            ):
                lines.append(node.lineno)
            if name == "save" and any(
                k.arg == "update_fields" and _mentions_close_state(k.value) for k in node.keywords
            ):
                lines.append(node.lineno)
        if isinstance(node, ast.Assign | ast.AugAssign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(
                isinstance(sub, ast.Attribute) and sub.attr == "close_state"
                for target in targets
                for sub in ast.walk(target)
            ):
                lines.append(node.lineno)
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            text = node.value.upper()
            if "CLOSE_STATE" in text and ("UPDATE " in text or " SET " in text):
                lines.append(node.lineno)
    return lines


# The close dimensions (关闭维度) of lines: their rows are close states too.
DIMENSION_MODEL = "LineDimensionClose"
DIMENSION_WRITES = {
    "create",
    "bulk_create",
    "update",
    "delete",
    "get_or_create",
    "update_or_create",
    "bulk_update",
    "save",
}


def _dimension_writes(tree: ast.AST) -> list[int]:
    """Calls that write rows of the dimension table: a write method on a chain that names the
    model (`LineDimensionClose.objects.filter(…).delete()`) or on an instance built from it, or
    through a line's `dimension_closes` manager."""
    lines = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        if node.func.attr not in DIMENSION_WRITES:
            continue
        names = {n.id for n in ast.walk(node.func.value) if isinstance(n, ast.Name)}
        attrs = {n.attr for n in ast.walk(node.func.value) if isinstance(n, ast.Attribute)}
        if DIMENSION_MODEL in names or "dimension_closes" in attrs:
            lines.append(node.lineno)
    return lines


def _offenders(check: Callable[[ast.AST], list[int]]) -> list[str]:
    offenders = []
    for path in sorted(SRC.rglob("*.py")):
        if "migrations" in path.parts or path == THE_WRITE_PATH:
            continue
        offenders.extend(
            f"{path.relative_to(SRC)}:{line}"
            for line in check(ast.parse(path.read_text(encoding="utf-8")))
        )
    return offenders


def test_only_the_transitions_module_writes_dimension_closes() -> None:
    assert _offenders(_dimension_writes) == []


def test_the_dimension_check_finds_each_kind_of_write() -> None:
    samples = [
        "LineDimensionClose.objects.create(line=line, dimension='receiving')",
        "LineDimensionClose.objects.bulk_create(rows)",
        "LineDimensionClose.objects.filter(line=line).delete()",
        "LineDimensionClose.objects.filter(line=line).update(reason='x')",
        "line.dimension_closes.all().delete()",
        "LineDimensionClose(line=line).save()",
    ]
    for sample in samples:
        assert _dimension_writes(ast.parse(sample)) == [1], sample
    assert _dimension_writes(ast.parse("LineDimensionClose.objects.filter(x=1).count()")) == []
    written = _dimension_writes(ast.parse(THE_WRITE_PATH.read_text(encoding="utf-8")))
    assert len(written) >= 2, "the transitions module writes the dimension rows"


def test_only_the_transitions_module_writes_close_states() -> None:
    assert _offenders(_writes) == []


def test_the_check_finds_each_kind_of_write() -> None:
    samples = [
        "Document.objects.filter(pk=1).update(close_state='open')",
        "Line.objects.bulk_update(lines, ['close_state'])",
        "Line.objects.bulk_update(lines, fields=['close_state', 'x'])",
        "document.save(update_fields=['close_state'])",
        "document.close_state = 'closed'",
        "cursor.execute('UPDATE documents_line SET close_state = %s')",
    ]
    for sample in samples:
        assert _writes(ast.parse(sample)) == [1], sample
    assert _writes(ast.parse("Document.objects.filter(close_state='open').count()")) == []

"""No domain error is built from an English f-string (or plain English text) any more: each one is
a gettext msgid with params, so the page shows it in the reader's language (issue 17).

The scan reads the source: a DomainError (or a subclass) raised with an f-string, a string
literal or a `+` of them as its message, and no `params=`, is English-only. No file holds one
any more."""

import ast
from pathlib import Path

import closeout
from closeout.core import errors

ROOT = Path(closeout.__file__).parent

ERROR_NAMES = {
    name
    for name, value in vars(errors).items()
    if isinstance(value, type) and issubclass(value, errors.DomainError)
}

# Every file is converted (issue 17): a new English-only error fails the scan.
STILL_ENGLISH: dict[str, int] = {}
SKIPPED_DIRS = {"migrations", "demo"}


def _is_english_text(node: ast.expr) -> bool:
    if isinstance(node, ast.JoinedStr):
        return True
    if isinstance(node, ast.Constant):
        return isinstance(node.value, str)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return _is_english_text(node.left) or _is_english_text(node.right)
    return False


def english_errors(path: Path) -> list[int]:
    """Line numbers of the English-only domain errors raised in one file."""
    lines = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if not isinstance(node, ast.Call) or not node.args:
            continue
        func = node.func
        name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
        if name not in ERROR_NAMES or any(k.arg == "params" for k in node.keywords):
            continue
        if _is_english_text(node.args[0]):
            lines.append(node.lineno)
    return lines


def _found() -> dict[str, list[int]]:
    found = {}
    for path in sorted(ROOT.rglob("*.py")):
        rel = path.relative_to(ROOT)
        if SKIPPED_DIRS & set(rel.parts[:-1]) or rel.name.startswith("imports"):
            continue
        lines = english_errors(path)
        if lines:
            found[rel.as_posix()] = lines
    return found


def test_scan_finds_an_english_error(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        "from django.utils.translation import gettext_noop\n"
        "raise InvalidInput(f'no line {n}')\n"
        "raise NotFound('plain text', details={})\n"
        "raise Conflict(f'a ' + ', '.join(x))\n"
        "raise InvalidInput(gettext_noop('line %(n)s'), params={'n': 1})\n"
        "raise InvalidTransition(en, details={'message_zh': zh})\n",
        encoding="utf-8",
    )
    assert english_errors(sample) == [2, 3, 4]


def test_no_english_domain_error_outside_the_files_left() -> None:
    found = _found()
    grown = {
        path: lines for path, lines in found.items() if len(lines) > STILL_ENGLISH.get(path, 0)
    }
    assert not grown, (
        "domain errors built from English text (use gettext_noop(msgid) and params=): "
        + "; ".join(f"{path} lines {lines}" for path, lines in grown.items())
    )


def test_the_list_of_files_left_is_current() -> None:
    """A file converted leaves the list (so it cannot slip back)."""
    found = _found()
    stale = {
        path: (count, len(found.get(path, [])))
        for path, count in STILL_ENGLISH.items()
        if len(found.get(path, [])) < count
    }
    assert not stale, f"lower these counts in STILL_ENGLISH (listed, found): {stale}"

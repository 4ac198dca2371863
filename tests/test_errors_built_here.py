"""errors/ builds every text a caller sees: no other module of src/ constructs an error of the tool.

The rule, checked on the source (ast), so that it holds for code no test runs:

- Outside errors/, nothing calls an error class: `ToolError(...)`, `BackendConfigError(...)`, or any
  subclass of them, wherever it is defined. A module raises what a named constructor of errors/
  returns, giving it facts (ids, paths, numbers, a provider's own words); the sentence is written there.
  The rule is about the call, whatever its arguments: a message assembled from variables or f-strings
  is as much a text built elsewhere as a literal one, and no call site needs an exception (re-raising
  an error object is not a construction).
- Outside errors/, no class derives from them: an error type, and so the words its construction
  needs, is declared in errors/ too.

What it does not hold: the facts handed to a constructor may themselves be phrases (an argument's
rule beside the pattern that enforces it, a provider's detail for `malformed`); they describe the
thing refused, not the refusal, and live with the rules they describe.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "cancel_job_mcp"
ERRORS = SRC / "errors" / "__init__.py"
ROOTS = frozenset({"ToolError", "BackendConfigError"})


def _modules() -> dict[str, ast.Module]:
    return {
        path.relative_to(SRC).as_posix(): ast.parse(path.read_text(), str(path)) for path in SRC.rglob("*.py")
    }


def _name(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return None


def _error_classes(modules: dict[str, ast.Module]) -> set[str]:
    """ToolError, BackendConfigError and every class of src/ deriving from one of them, at any depth."""
    bases = {
        node.name: {_name(base) for base in node.bases}
        for tree in modules.values()
        for node in ast.walk(tree)
        if isinstance(node, ast.ClassDef)
    }
    found = set(ROOTS)
    while grown := {name for name, parents in bases.items() if parents & found} - found:
        found |= grown
    return found


def _constructions(tree: ast.Module, classes: set[str]) -> list[str]:
    """Each call of an error class, and each class deriving from one, as "line N: what"."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and _name(node.func) in classes:
            found.append(f"line {node.lineno}: {_name(node.func)}(...)")
        elif isinstance(node, ast.ClassDef) and {_name(base) for base in node.bases} & classes:
            found.append(f"line {node.lineno}: class {node.name}")
    return found


def test_only_errors_py_constructs_the_tools_errors() -> None:
    modules = _modules()
    classes = _error_classes(modules)
    offenders = {
        module: found
        for module, tree in modules.items()
        if not module.startswith("errors/") and (found := _constructions(tree, classes))
    }
    assert not offenders, (
        "Error texts are built only in errors/: give each of these a named constructor there (in the"
        f" section of its area) and raise what it returns: {offenders}"
    )


def test_the_rule_sees_what_it_forbids() -> None:
    """The check is not vacuous: it finds a call and a subclass, however they are written."""
    tree = ast.parse(
        "from cancel_job_mcp import errors\n"
        "class Late(errors.ToolError): ...\n"
        "raise errors.ToolError(code, f'No job {job_id!r}')\n"
        "raise BackendConfigError(message)\n"
        "raise Late(code, message)\n"
        "raise not_found(job_id, where)\n"
    )
    classes = _error_classes({"errors/__init__.py": ast.parse(ERRORS.read_text()), "x.py": tree})
    assert _constructions(tree, classes) == [
        "line 2: class Late",
        "line 3: ToolError(...)",
        "line 4: BackendConfigError(...)",
        "line 5: Late(...)",
    ]

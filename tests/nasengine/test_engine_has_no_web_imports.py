"""nasengine must stay usable without the web stack (no django/celery/channels/DRF imports)
and must ship no test code (the contract suite's toy method and the engine fakes stay in
tests/)."""
from __future__ import annotations

import ast
from pathlib import Path

import nasengine

FORBIDDEN = ("django", "celery", "channels", "channels_redis", "rest_framework", "daphne")
TEST_CODE = ("tests", "conftest", "toy_method", "contract_runs", "engine_fakes", "pytest")


def _imported_modules(tree: ast.AST):
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.lineno, node.module
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(
                node.func, "id", None)) in ("import_module", "__import__"):
            if node.args and isinstance(node.args[0], ast.Constant) \
                    and isinstance(node.args[0].value, str):
                yield node.lineno, node.args[0].value


def _offenders(forbidden: tuple[str, ...]) -> list[str]:
    root = Path(nasengine.__file__).parent
    files = sorted(root.rglob("*.py"))
    assert len(files) > 10
    offenders = []
    for path in files:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for lineno, module in _imported_modules(tree):
            if module.split(".")[0] in forbidden:
                offenders.append(f"{path.relative_to(root.parent)}:{lineno} imports {module}")
    return offenders


def test_nasengine_imports_no_web_framework():
    offenders = _offenders(FORBIDDEN)
    assert not offenders, "\n".join(offenders)


def test_nasengine_imports_no_test_code():
    offenders = _offenders(TEST_CODE)
    assert not offenders, "\n".join(offenders)


def test_checker_catches_a_web_import(tmp_path):
    tree = ast.parse("import os\nfrom django.db import models\nimportlib.import_module('celery')")
    found = [m for _, m in _imported_modules(tree) if m.split(".")[0] in FORBIDDEN]
    assert found == ["django.db", "celery"]
    tree = ast.parse("from tests.contract.toy_method import ToyMethod\nimport numpy")
    assert [m for _, m in _imported_modules(tree) if m.split(".")[0] in TEST_CODE] == \
        ["tests.contract.toy_method"]

"""A method is its own folder: no method package imports another method's package, and no
shared engine code imports a method package (only the registry, ``nasengine.methods``, names
them, in ``BUILTIN_METHODS``). Shared code a second method needs moves to a shared package
(e.g. ``nasengine.lattice``), so removing or breaking one method never breaks another.
"""
from __future__ import annotations

import ast
from pathlib import Path

import nasengine

ENGINE = Path(nasengine.__file__).parent
METHODS_DIR = ENGINE / "methods"


def method_packages() -> list[str]:
    return sorted(p.name for p in METHODS_DIR.iterdir()
                  if p.is_dir() and (p / "__init__.py").exists())


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ENGINE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import in ``path``, relative ones resolved."""
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            found.append((node.lineno, target))
            # "from nasengine.methods import dints" imports the package too
            found += [(node.lineno, f"{target}.{alias.name}") for alias in node.names]
    return found


def method_of(module: str) -> str | None:
    """The method package a module name belongs to, or None."""
    parts = module.split(".")
    if parts[:2] == ["nasengine", "methods"] and len(parts) > 2 and parts[2] in method_packages():
        return parts[2]
    return None


def boundary_violations(paths) -> list[str]:
    problems = []
    for path in paths:
        owner = method_of(module_name(path))
        crossings = sorted({(line, method_of(target)) for line, target in imported_modules(path)
                            if method_of(target) not in (None, owner)})
        for line, other in crossings:
            where = f"{path.relative_to(ENGINE.parent)}:{line}"
            if owner is None:
                problems.append(f"{where}: shared code imports method package {other!r}")
            else:
                problems.append(f"{where}: method {owner!r} imports method {other!r}")
    return problems


def test_method_packages_exist():
    assert "dints" in method_packages()


def test_no_method_imports_another_and_no_shared_code_imports_a_method():
    registry_file = METHODS_DIR / "__init__.py"
    files = [p for p in sorted(ENGINE.rglob("*.py")) if p != registry_file]
    assert len(files) > 10
    problems = boundary_violations(files)
    assert not problems, "\n".join(problems)


def test_checker_resolves_relative_imports_and_sees_a_crossing(tmp_path, monkeypatch):
    """The checker is not vacuous: relative and absolute crossings are both reported."""
    monkeypatch.setattr(f"{__name__}.method_packages", lambda: ["alpha", "beta"])
    fake_engine = tmp_path / "nasengine"
    pkg = fake_engine / "methods" / "alpha"
    pkg.mkdir(parents=True)
    (fake_engine / "__init__.py").write_text("")
    (fake_engine / "methods" / "__init__.py").write_text("")
    (pkg / "__init__.py").write_text("")
    (pkg / "model.py").write_text("from ..beta import space\nfrom . import helpers\n"
                                  "import nasengine.methods.beta.losses\n")
    (fake_engine / "ops.py").write_text("from nasengine.methods import alpha\n")
    monkeypatch.setattr(f"{__name__}.ENGINE", fake_engine)
    problems = boundary_violations([pkg / "model.py", fake_engine / "ops.py"])
    assert problems == [
        "nasengine/methods/alpha/model.py:1: method 'alpha' imports method 'beta'",
        "nasengine/methods/alpha/model.py:3: method 'alpha' imports method 'beta'",
        "nasengine/ops.py:1: shared code imports method package 'alpha'",
    ]

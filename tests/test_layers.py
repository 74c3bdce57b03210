"""The import-layer contract, read from the AST of every module (ARCHITECTURE.md draws it).

Every import counts: at module level, under TYPE_CHECKING, inside functions, relative ones
resolved against the importing module. The rule, bottom up:

    nskit          imports none of our packages
    backends       imports nskit
    netsetter      imports backends, nskit
    netsetter_cni  imports netsetter (its library), backends, nskit
    runner         imports netsetter (its library, never a CLI module), backends, nskit

and no cycle between the top-level packages.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OURS = ("nskit", "backends", "netsetter", "netsetter_cni", "runner")
ALLOWED = {
    "nskit": set(),
    "backends": {"nskit"},
    "netsetter": {"backends", "nskit"},
    "netsetter_cni": {"netsetter", "backends", "nskit"},
    "runner": {"netsetter", "backends", "nskit"},
}
# CLI modules named outright; any module importing typer is one too.
CLI_MODULES = {"netsetter.cli", "netsetter.launch", "netsetter.commands", "netsetter.__main__",
               "netsetter_cni.main", "netsetter_cni.__main__", "runner.cli", "runner.launch", "runner.__main__"}


def module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports(root: Path, path: Path) -> set[str]:
    """Every module name path imports, relative imports resolved."""
    name = module_name(root, path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - (node.level - 1)]
                prefix = ".".join(base + ([node.module] if node.module else []))
            else:
                prefix = node.module or ""
            found.add(prefix)
            # `from pkg import mod` may import a module: count pkg.mod too.
            found.update(f"{prefix}.{alias.name}" for alias in node.names)
    return found


def scan(root: Path, packages=OURS) -> dict[str, set[str]]:
    """module -> the modules it imports, for every .py of our packages under root."""
    return {module_name(root, path): imports(root, path)
            for package in packages if (root / package).is_dir()
            for path in sorted((root / package).rglob("*.py"))}


def violations(root: Path) -> list[str]:
    graph = scan(root)
    cli = set(CLI_MODULES) | {m for m, found in graph.items() if any(i.split(".")[0] == "typer" for i in found)}
    bad = []
    edges: dict[str, set[str]] = {p: set() for p in OURS}
    for module, found in graph.items():
        top = module.split(".")[0]
        for target in sorted(found):
            other = target.split(".")[0]
            if other not in OURS or other == top:
                continue
            edges[top].add(other)
            if other not in ALLOWED[top]:
                bad.append(f"{module} imports {target}: {top} may import only {sorted(ALLOWED[top]) or 'none of ours'}")
            elif top in ("runner", "netsetter_cni") and target in cli:
                bad.append(f"{module} imports {target}, a CLI module: import the library instead")
    # A cycle between top-level packages (the ALLOWED table has none; this guards edits to it).
    def reach(start: str, seen: set[str]) -> set[str]:
        for nxt in edges[start] - seen:
            seen.add(nxt)
            reach(nxt, seen)
        return seen
    bad += [f"import cycle through {p}" for p in OURS if p in reach(p, set())]
    return bad


def test_our_packages_keep_the_layers():
    assert scan(ROOT)["netsetter.engine"], "the scan found no imports: is the tree where it expects?"
    assert violations(ROOT) == []


def test_a_forbidden_import_is_reported(tmp_path):
    for package in OURS:
        (tmp_path / package).mkdir()
        (tmp_path / package / "__init__.py").write_text("")
    (tmp_path / "nskit" / "errors.py").write_text("def f():\n    from netsetter import engine\n")
    (tmp_path / "backends" / "base.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from runner.spec import Spec\n")
    (tmp_path / "netsetter" / "cli.py").write_text("import typer\n")
    (tmp_path / "runner" / "cli.py").write_text("from netsetter.cli import main\nfrom netsetter import engine\n")
    (tmp_path / "netsetter" / "host").mkdir()
    (tmp_path / "netsetter" / "host" / "__init__.py").write_text("from ...runner import spec\n")
    found = violations(tmp_path)
    assert any(v.startswith("nskit.errors imports netsetter") for v in found), found
    assert any(v.startswith("backends.base imports runner.spec") for v in found), found
    assert any(v.startswith("runner.cli imports netsetter.cli, a CLI module") for v in found), found
    assert any(v.startswith("netsetter.host imports runner.spec") for v in found), found
    assert not any(v.startswith("runner.cli imports netsetter.engine") for v in found), found
    assert any(v.startswith("import cycle through") for v in found), found

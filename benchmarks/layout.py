"""The shape of the code, as a table: modules, their sizes, the longest functions, import depth.

    .venv/bin/python benchmarks/layout.py [--root .] [--packages flows,tasks]

Import depth counts module-level imports between the project's own modules (imports inside
functions and under TYPE_CHECKING are left out: they do not load at import time): a module that
imports none of them is level 1, one that imports a level-1 module is level 2, and so on.
"""

from __future__ import annotations

import argparse
import ast
import statistics
from dataclasses import dataclass
from functools import cache
from pathlib import Path


@dataclass(frozen=True)
class Module:
    name: str
    path: Path
    lines: int
    imports: frozenset[str]
    functions: tuple[tuple[str, int], ...]  # (qualified name, lines)
    any_uses: int


def _module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _top_level_imports(tree: ast.Module, name: str, known: set[str]) -> set[str]:
    found: set[str] = set()

    def visit(body: list[ast.stmt]) -> None:
        for node in body:
            if isinstance(node, ast.If) and not _type_checking(node):
                visit(node.body)
                visit(node.orelse)
            elif isinstance(node, ast.Try):
                visit(node.body)
            elif isinstance(node, ast.Import):
                found.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module:
                base = node.module
                if node.level:
                    package = name.rsplit(".", node.level)[0]
                    base = f"{package}.{node.module}"
                found.add(base)
                found.update(f"{base}.{a.name}" for a in node.names)

    visit(tree.body)
    resolved = set()
    for target in found:
        while target and target not in known:
            target = target.rpartition(".")[0]
        if target and target != name:
            resolved.add(target)
    return resolved


def _functions(tree: ast.Module) -> list[tuple[str, int]]:
    out: list[tuple[str, int]] = []

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                qualified = f"{prefix}{child.name}"
                assert child.end_lineno is not None
                out.append((qualified, child.end_lineno - child.lineno + 1))
                visit(child, f"{qualified}.")
            elif isinstance(child, ast.ClassDef):
                visit(child, f"{prefix}{child.name}.")

    visit(tree, "")
    return out


def _any_uses(tree: ast.Module) -> int:
    return sum(1 for node in ast.walk(tree)
               if (isinstance(node, ast.Name) and node.id == "Any")
               or (isinstance(node, ast.Attribute) and node.attr == "Any"))


def collect(root: Path, packages: list[str]) -> dict[str, Module]:
    paths = sorted(p for package in packages for p in (root / package).rglob("*.py"))
    names = {_module_name(root, p): p for p in paths}
    known = set(names)
    modules = {}
    for name, path in names.items():
        text = path.read_text()
        tree = ast.parse(text)
        modules[name] = Module(name, path, len(text.splitlines()),
                               frozenset(_top_level_imports(tree, name, known)),
                               tuple(_functions(tree)), _any_uses(tree))
    return modules


def depths(modules: dict[str, Module]) -> dict[str, int]:
    @cache
    def depth(name: str, seen: frozenset[str] = frozenset()) -> int:
        below = [depth(i, seen | {name}) for i in modules[name].imports if i not in seen]
        return 1 + max(below, default=0)

    return {name: depth(name) for name in modules}


def report(root: Path, packages: list[str]) -> str:
    modules = collect(root, packages)
    code = {n: m for n, m in modules.items() if m.path.name != "__init__.py" or m.lines > 5}
    sizes = sorted(m.lines for m in code.values())
    level = depths(modules)
    functions = sorted(((lines, f"{m.name}.{f}") for m in modules.values()
                        for f, lines in m.functions), reverse=True)
    lines = ["| measure | value |", "|---|---|"]
    for package in packages:
        inside = [m for n, m in code.items() if n == package or n.startswith(f"{package}.")]
        deepest = max((level[m.name] for m in inside), default=0)
        over = sum(m.lines > 300 for m in inside)
        lines.append(f"| {package}/: modules, median lines, largest, over 300, import levels | "
                     f"{len(inside)}, {statistics.median(m.lines for m in inside):.0f}, "
                     f"{max(m.lines for m in inside)} ({max(inside, key=lambda m: m.lines).name}), "
                     f"{over}, {deepest} |")
    lines.append(f"| all: modules, median lines, largest | {len(code)}, "
                 f"{statistics.median(sizes):.0f}, {sizes[-1]} |")
    lines.append(f"| uses of `Any` | {sum(m.any_uses for m in modules.values())} |")
    lines += ["", "Ten longest functions:", "", "| lines | function |", "|---|---|"]
    lines += [f"| {n} | `{name}` |" for n, name in functions[:10]]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default=str(Path(__file__).resolve().parents[1]))
    parser.add_argument("--packages", default="flows,tasks")
    args = parser.parse_args()
    print(report(Path(args.root), args.packages.split(",")))


if __name__ == "__main__":
    main()

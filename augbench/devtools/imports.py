"""The package's import graph, read from the source with ``ast`` (nothing is imported).

Run ``python -m augbench.devtools.imports`` to print which part of augbench
imports which (``--modules``: module by module), the imports that go up the
layers below, any import cycle, and any import inside a function that does
not say why; ``--check`` exits 1 when there is one of these.

The parts sit in layers along the data flow, lowest first; a module imports
only from its own part or from a lower layer::

    errors, lookup, losses, registry,   leaves: nothing of augbench (plugins, schema: only errors)
    run_folder, plugins, schema
    config, schedules, protocol         the run configuration and its registries
    models                              timm factory and CIFAR variants
    data → augment → methods → engine → track → tune → leaderboard
    cli, __main__                       the only place that parses arguments

``devtools`` stands outside the layers: it may read any module's source,
and no module imports it. Imports inside functions count as much as those at
the top of a module; they only run later. Module-level imports are the
default: one inside a function carries a comment on its line (or on the line
above its block of imports) giving the reason, such as
``# lazy: keeps `augbench --help` fast``.
"""

from __future__ import annotations

import argparse
import ast
import sys
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

PACKAGE = "augbench"
ROOT = Path(__file__).resolve().parent.parent

#: Layers, lowest first; each part is a top-level module or subpackage of augbench.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("errors", "lookup", "losses", "registry", "run_folder", "plugins", "schema"),
    ("config", "schedules", "protocol"),
    ("models",),
    ("data",),
    ("augment",),
    ("methods",),
    ("engine",),
    ("track",),
    ("tune",),
    ("leaderboard",),
    ("cli", "__main__"),
)
OUTSIDE = ("devtools",)


@dataclass(frozen=True)
class Import:
    source: str  # the importing module
    target: str  # the imported augbench module
    line: int
    in_function: bool


def modules(root: Path = ROOT) -> dict[str, Path]:
    """Dotted module name -> file, for every module of the package (a package is its ``__init__.py``)."""
    found = {}
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def _resolve(name: str, known: dict[str, Path]) -> str | None:
    """The longest known module that ``name`` (a module or a name inside one) lies in."""
    while name:
        if name in known:
            return name
        name = name.rpartition(".")[0]
    return None


def imports_of(module: str, path: Path, known: dict[str, Path]) -> list[Import]:
    """Every import of an augbench module in ``path``, at module level and inside functions."""
    tree = ast.parse(path.read_text(), filename=str(path))
    is_package = path.name == "__init__.py"
    found: list[Import] = []

    def add(name: str, node: ast.AST, in_function: bool) -> None:
        target = _resolve(name, known)
        if target is not None and target != module:
            found.append(Import(module, target, node.lineno, in_function))

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            inner = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            if isinstance(child, ast.Import):
                for alias in child.names:
                    add(alias.name, child, in_function)
            elif isinstance(child, ast.ImportFrom):
                if child.level:
                    base = module.split(".") if is_package else module.split(".")[:-1]
                    base = base[:len(base) - (child.level - 1)]
                    prefix = ".".join(base + ([child.module] if child.module else []))
                else:
                    prefix = child.module or ""
                for alias in child.names:
                    add(f"{prefix}.{alias.name}", child, in_function)
            visit(child, inner)

    visit(tree, False)
    return found


def graph(root: Path = ROOT) -> dict[str, list[Import]]:
    """Module -> its imports of other augbench modules. Importing ``a.b.c`` from outside ``a.b`` also runs
    ``a/b/__init__.py``, so that package counts as imported too."""
    known = modules(root)
    edges: dict[str, list[Import]] = {}
    for module, path in known.items():
        direct = imports_of(module, path, known)
        implied = []
        for imp in direct:
            parent = imp.target.rpartition(".")[0]
            while parent != PACKAGE and parent:
                if not (module == parent or module.startswith(parent + ".")) and parent in known:
                    implied.append(Import(module, parent, imp.line, imp.in_function))
                parent = parent.rpartition(".")[0]
        edges[module] = sorted(set(direct + implied), key=lambda i: (i.target, i.line))
    return edges


def _function_import_blocks(tree: ast.AST) -> list[list[ast.stmt]]:
    """Runs of consecutive import statements inside functions."""
    blocks: list[list[ast.stmt]] = []

    def visit(node: ast.AST, in_function: bool) -> None:
        bodies = [v for v in vars(node).values() if isinstance(v, list) and v and isinstance(v[0], ast.stmt)]
        for body in bodies:
            block: list[ast.stmt] = []
            for stmt in body:
                if in_function and isinstance(stmt, (ast.Import, ast.ImportFrom)):
                    block.append(stmt)
                    continue
                if block:
                    blocks.append(block)
                    block = []
                visit(stmt, in_function or isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)))
            if block:
                blocks.append(block)

    visit(tree, False)
    return blocks


def unexplained_lazy_imports(root: Path = ROOT) -> list[str]:
    """Imports inside functions (of any module, augbench's or not) with no comment giving the reason."""
    found = []
    for path in sorted(root.rglob("*.py")):
        lines = path.read_text().splitlines()
        for block in _function_import_blocks(ast.parse("\n".join(lines))):
            first = block[0].lineno
            above = lines[first - 2].strip() if first > 1 else ""
            said = above.startswith("#") or any("#" in lines[n - 1] for stmt in block
                                                for n in range(stmt.lineno, stmt.end_lineno + 1))
            if not said:
                found.append(f"{path.relative_to(root.parent)}:{first} imports inside a function without a "
                             "comment saying why")
    return found


def part(module: str) -> str:
    """The top-level part of augbench a module belongs to (``augbench.data.cifar`` -> ``data``)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else PACKAGE


def layer(name: str) -> int | None:
    for level, names in enumerate(LAYERS):
        if name in names:
            return level
    return None


def upward(edges: dict[str, list[Import]]) -> list[str]:
    """Imports from a lower layer into a higher one, or into ``devtools``, as readable lines."""
    problems = []
    for imports in edges.values():
        for imp in imports:
            source, target = part(imp.source), part(imp.target)
            if source == target or source in OUTSIDE or PACKAGE in (source, target):
                continue
            low, high = layer(source), layer(target)
            if target in OUTSIDE or low is None or high is None or high > low:
                where = "inside a function" if imp.in_function else "at module level"
                problems.append(f"{imp.source} (line {imp.line}, {where}) imports {imp.target}: "
                                f"{source} sits below {target}" if low is not None and high is not None
                                else f"{imp.source} (line {imp.line}) imports {imp.target}: "
                                     f"{source} or {target} has no layer")
    return problems


def cycles(edges: dict[str, list[Import]]) -> list[list[str]]:
    """The strongly connected module groups of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for imp in edges.get(node, []):
            if imp.target not in index:
                connect(imp.target)
                low[node] = min(low[node], low[imp.target])
            elif imp.target in on_stack:
                low[node] = min(low[node], index[imp.target])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in sorted(edges):
        if node not in index:
            connect(node)
    return sorted(found)


def part_graph(edges: dict[str, list[Import]]) -> dict[str, dict[str, tuple[int, int]]]:
    """Part -> imported part -> (imports at module level, imports inside functions)."""
    counts: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(lambda: [0, 0]))
    for imports in edges.values():
        for imp in imports:
            source, target = part(imp.source), part(imp.target)
            if source != target:
                counts[source][target][imp.in_function] += 1
    return {s: {t: (c[0], c[1]) for t, c in sorted(targets.items())} for s, targets in counts.items()}


def _order(name: str) -> tuple[int, str]:
    level = layer(name)
    return (len(LAYERS) if level is None else level, name)


def report(edges: dict[str, list[Import]], by_module: bool = False, root: Path = ROOT) -> tuple[str, int]:
    """The printed graph and the number of problems (upward imports, cycles, unexplained lazy imports)."""
    lines = ["# part -> parts it imports (imports at module level + inside functions)"]
    parts = part_graph(edges)
    for source in sorted({part(m) for m in edges}, key=_order):
        targets = parts.get(source, {})
        shown = ", ".join(f"{t} ({m}+{f})" for t, (m, f) in sorted(targets.items(), key=lambda kv: _order(kv[0])))
        lines.append(f"{source:12} -> {shown or '-'}")
    if by_module:
        lines.append("# module -> modules it imports (* inside a function)")
        for module in sorted(edges):
            shown = ", ".join(sorted({i.target + ("*" if i.in_function else "") for i in edges[module]}))
            lines.append(f"{module} -> {shown or '-'}")
    function_level = sum(i.in_function for imports in edges.values() for i in imports)
    lines.append(f"# {sum(map(len, edges.values()))} imports between augbench modules, {function_level} "
                 f"inside functions, {len(edges)} modules")
    problems = upward(edges)
    loops = cycles(edges)
    lines.append(f"# upward imports: {len(problems)}")
    lines += [f"  {p}" for p in problems]
    lines.append(f"# import cycles: {len(loops)}")
    lines += ["  " + " <-> ".join(group) for group in loops]
    unexplained = unexplained_lazy_imports(root)
    lines.append(f"# imports inside functions without a reason: {len(unexplained)}")
    lines += [f"  {u}" for u in unexplained]
    return "\n".join(lines), len(problems) + len(loops) + len(unexplained)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m augbench.devtools.imports", description=__doc__.split("\n")[0])
    parser.add_argument("--root", type=Path, default=ROOT, help="the package folder to read (default: this one)")
    parser.add_argument("--modules", action="store_true", help="list every module's imports too")
    parser.add_argument("--check", action="store_true",
                        help="exit 1 on an upward import, an import cycle or an unexplained import inside a function")
    args = parser.parse_args(argv)
    root = args.root.resolve()
    text, problems = report(graph(root), by_module=args.modules, root=root)
    print(text)
    return 1 if args.check and problems else 0


if __name__ == "__main__":
    raise SystemExit(main())

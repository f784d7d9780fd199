"""Draw the package's module graph as a Mermaid diagram for the README ("How the code is organised").

    python tools/module_graph.py            # prints the diagram
    python tools/module_graph.py --check    # exit 1 if the package has an import cycle

Every `denoiser` import in a module counts, wherever it stands. Sub-packages that hold plumbing (data, evaluation,
deploy, utils, cli) are drawn as one box each, so the learnable core stays readable.
"""

from __future__ import annotations

import argparse
import ast
import pathlib
import sys

PACKAGE = pathlib.Path(__file__).resolve().parent.parent / "denoiser"
GROUPS = ("data", "evaluation", "deploy", "utils", "cli")


def module_name(path: pathlib.Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: pathlib.Path, modules: set[str]) -> set[str]:
    """The denoiser modules that a file imports (`import denoiser.x`, `from denoiser.x import y`).

    `from denoiser import objective` imports the module `denoiser.objective`, not the package's __init__.
    """
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("denoiser"):
            for alias in node.names:
                submodule = f"{node.module}.{alias.name}"
                found.add(submodule if submodule in modules else node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.startswith("denoiser"))
    return found


def module_graph() -> dict[str, set[str]]:
    modules = {module_name(path): path for path in PACKAGE.rglob("*.py")}
    names = set(modules)
    return {name: {m for m in imports(path, names) if m in names and m != name} for name, path in modules.items()}


def box(module: str) -> str:
    """The box a module is drawn in: its sub-package for plumbing, itself for the core."""
    parts = module.split(".")
    if len(parts) > 2 or (len(parts) == 2 and parts[1] in GROUPS):
        return parts[1] + "/"
    return parts[-1]


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """A list of modules forming an import cycle, or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for target in sorted(graph[node]):
            if state.get(target) == 1:
                return stack[stack.index(target) :] + [target]
            if target not in state and (cycle := visit(target)):
                return cycle
        state[node] = 2
        stack.pop()
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def boxed(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    """The graph between boxes, without the package's own __init__ (it only re-exports)."""
    boxes: dict[str, set[str]] = {}
    for a, targets in graph.items():
        if box(a) != "denoiser":
            boxes.setdefault(box(a), set()).update(box(b) for b in targets if box(b) not in (box(a), "denoiser"))
    return boxes


def reachable(graph: dict[str, set[str]], start: str, skip_edge: tuple[str, str]) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        node = todo.pop()
        for target in graph.get(node, ()):
            if (node, target) != skip_edge and target not in seen:
                seen.add(target)
                todo.append(target)
    return seen


def mermaid(graph: dict[str, set[str]]) -> str:
    """Only the edges that no longer path implies (a transitive reduction), so the picture stays readable."""
    boxes = boxed(graph)
    edges = sorted((a, b) for a, targets in boxes.items() for b in targets if b not in reachable(boxes, a, (a, b)))
    ident = lambda name: name.strip("/").replace(".", "_") + ("_pkg" if name.endswith("/") else "")  # noqa: E731
    lines = ["graph LR"]
    lines += [f'  {ident(a)}["{a}"] --> {ident(b)}["{b}"]' for a, b in edges]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only check that there is no import cycle")
    args = parser.parse_args()
    graph = module_graph()
    cycle = find_cycle(graph)
    if cycle:
        print("import cycle: " + " -> ".join(cycle), file=sys.stderr)
        return 1
    if not args.check:
        print(mermaid(graph))
    return 0


if __name__ == "__main__":
    sys.exit(main())

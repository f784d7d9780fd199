"""The package's layout: two wings over one core, read from the imports (tools/module_graph.py).

The sampling wing (schedule -> solvers -> sampler -> conditions -> cascade -> generation, with serialization
loading a sampler from a checkpoint) must not know training exists; the training wing uses it like a user.
"""

import functools
import importlib.util
import pathlib

TOOL = pathlib.Path(__file__).resolve().parent.parent / "tools" / "module_graph.py"
_spec = importlib.util.spec_from_file_location("module_graph", TOOL)
module_graph = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(module_graph)

SAMPLING_WING = [
    "denoiser.schedule",
    "denoiser.solvers",
    "denoiser.sampler",
    "denoiser.conditions",
    "denoiser.cascade",
    "denoiser.generation",
    "denoiser.serialization",
    "denoiser.editing",
]
TRAINING_SIDE = ("denoiser.training", "denoiser.callbacks", "denoiser.objective", "denoiser.data.pipeline")
OUTER = ("denoiser.evaluation", "denoiser.cli", "denoiser.deploy", "denoiser.multi_worker")


def imported_by(graph: dict, module: str) -> set[str]:
    """Every module that `module` imports, directly or through others."""
    seen, todo = set(), [module]
    while todo:
        for target in graph[todo.pop()]:
            if target not in seen:
                seen.add(target)
                todo.append(target)
    return seen


def longest_chain(graph: dict, start: str, end: str) -> list[str]:
    """The longest import path from `start` to `end` (the graph has no cycle), [] if there is none."""

    @functools.cache
    def path_from(node: str) -> tuple[str, ...]:
        if node == end:
            return (node,)
        paths = [path_from(target) for target in graph[node]]
        best = max((path for path in paths if path), key=len, default=())
        return (node, *best) if best else ()

    return list(path_from(start))


def test_the_package_has_no_import_cycle():
    assert module_graph.find_cycle(module_graph.module_graph()) is None


def test_the_sampling_wing_imports_nothing_of_training_evaluation_or_the_command_line():
    graph = module_graph.module_graph()
    for module in SAMPLING_WING:
        forbidden = [m for m in imported_by(graph, module) if m in TRAINING_SIDE or m.startswith(OUTER)]
        assert not forbidden, f"{module} imports {forbidden}"


def test_training_reaches_sampling_through_the_sampler_not_the_command_line():
    graph = module_graph.module_graph()
    reached = imported_by(graph, "denoiser.training")
    assert "denoiser.sampler" in reached
    assert not [m for m in reached if m.startswith(("denoiser.cli", "denoiser.deploy"))]


def test_no_import_chain_from_the_command_line_to_the_config_is_longer_than_seven_modules():
    graph = module_graph.module_graph()
    chains = [longest_chain(graph, module, "denoiser.config") for module in graph if module.startswith("denoiser.cli")]
    longest = max(chains, key=len)
    assert len(longest) <= 7, " -> ".join(longest)


def test_the_readmes_module_graph_is_the_packages():
    """The README's diagram is `python tools/module_graph.py`'s output; redraw it there when imports change."""
    readme = (TOOL.parent.parent / "README.md").read_text()
    start = readme.index("```mermaid\n") + len("```mermaid\n")
    assert readme[start : readme.index("```", start)].strip() == module_graph.mermaid(module_graph.module_graph())

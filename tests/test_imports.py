"""The package is layered in one direction: no import cycle among batchcore's modules, counting the
imports inside functions too (a function-level import that closes a cycle only hides it)."""

import ast
import pathlib

ROOT = pathlib.Path(__file__).resolve().parent.parent / "python"
EXTENSIONS = {"batchcore._core", "batchcore._cuda"}


def module_name(path: pathlib.Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict:
    modules = {module_name(p): p for p in (ROOT / "batchcore").rglob("*.py")}
    graph = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        targets = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom):
                base = package
                for _ in range(node.level - 1):
                    base = base.rpartition(".")[0]
                stem = (base + "." + node.module if node.module else base) if node.level else node.module
                for a in node.names:  # `from . import models` names a module; `from .x import f` a name
                    full = f"{stem}.{a.name}"
                    targets.add(full if full in modules or full in EXTENSIONS else stem)
        graph[name] = {t for t in targets if t in modules and t != name} - EXTENSIONS
    return graph


def find_cycle(graph: dict):
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        state[node] = "done"
        stack.pop()
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_the_import_graph_has_no_cycle():
    graph = import_graph()
    assert "batchcore.backends.native_backend" in graph and "batchcore.sweep" in graph
    cycle = find_cycle(graph)
    assert cycle is None, " -> ".join(cycle)


def test_the_cycle_finder_finds_a_planted_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


# The layers, lowest first: a module may import from its own layer or a lower one, never a higher one.
LAYERS = [
    {"batchcore.errors", "batchcore.checks", "batchcore.info", "batchcore.devices", "batchcore.progress"},
    {"batchcore.models", "batchcore.orders", "batchcore.timing", "batchcore.numerics", "batchcore.resultfile",
     "batchcore.report", "batchcore.torch_models", "batchcore.rss", "batchcore.user_modules",
     "batchcore.graph_models", "batchcore.fx_import", "batchcore.fx_reader", "batchcore.fx_composites",
     "batchcore.plots"},
    {"batchcore.probes", "batchcore.memory", "batchcore.backends", "batchcore.backends.base",
     "batchcore.backends.native_backend", "batchcore.backends.torch_backend", "batchcore.backends.arrays",
     "batchcore.backends.cuda_events"},
    {"batchcore.decisions"},
    {"batchcore.results"},
    {"batchcore.sweep", "batchcore.module_sweep"},
    {"batchcore.studies", "batchcore.studies.record", "batchcore.studies.outputs", "batchcore.studies.rounding",
     "batchcore.studies.accuracy", "batchcore.studies.figures", "batchcore.studies.digits",
     "batchcore.studies.evaluation", "batchcore.studies.serving", "batchcore.studies.deployment",
     "batchcore.studies.performance", "batchcore.studies.training", "batchcore.studies.queue_check"},
    {"batchcore.html_report"},
    {"batchcore.cli", "batchcore.__main__", "batchcore", "batchcore._rss_child"},  # entry points
]


def test_every_import_goes_down_the_layers():
    graph = import_graph()
    rank = {module: i for i, layer in enumerate(LAYERS) for module in layer}
    assert set(graph) == set(rank), f"modules without a layer: {sorted(set(graph) - set(rank))}"
    upward = [f"{a} -> {b}" for a, targets in graph.items() for b in targets if rank[b] > rank[a]]
    assert not upward, upward

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
    assert "batchcore.backends.native_core" in graph and "batchcore.run.sweep" in graph
    cycle = find_cycle(graph)
    assert cycle is None, " -> ".join(cycle)


def test_the_cycle_finder_finds_a_planted_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


# The layers, lowest first, by unit: a top-level module or a subpackage (every module in it). A module
# may import from its own unit, its own layer or a lower one, never a higher one.
LAYERS = [
    {"errors", "checks", "info", "devices", "files"},  # foundations: exceptions, argument rules, machine facts
    {"present"},  # how plain records look to people: text tables, figures, progress bars
    {"model"},  # what is run: chains, graphs, opaque modules
    {"frontends"},  # how a framework's model becomes one
    {"measure"},  # timing policy, orders, the machine's ceilings, the largest batch that fits
    {"backends"},  # who computes a forward pass, and how it is timed
    {"results", "explain"},  # a point's record, a sweep's result, the metrics and decisions; why bits differ
    {"run"},  # a sweep planned as cells and run
    {"studies"},  # the five questions
    {"report", "cli", "__main__", ""},  # entry points: the HTML report, the command line, the package itself
]


def unit(module: str) -> str:
    """``batchcore.backends.native_core`` -> ``backends``; ``batchcore.errors`` -> ``errors``; ``batchcore`` -> ``""``."""
    parts = module.split(".")[1:]
    return parts[0] if parts else ""


def upward_imports(graph: dict) -> list[str]:
    rank = {u: i for i, layer in enumerate(LAYERS) for u in layer}
    assert {unit(m) for m in graph} <= set(rank), f"units without a layer: {sorted({unit(m) for m in graph} - set(rank))}"
    return [f"{a} -> {b}" for a, targets in graph.items() for b in sorted(targets) if rank[unit(b)] > rank[unit(a)]]


def test_every_import_goes_down_the_layers():
    upward = upward_imports(import_graph())
    assert not upward, upward


def test_the_layer_check_catches_a_planted_upward_import():
    graph = import_graph()
    graph["batchcore.model.chain"] = graph["batchcore.model.chain"] | {"batchcore.backends.base"}
    assert upward_imports(graph) == ["batchcore.model.chain -> batchcore.backends.base"]


def test_the_top_level_stays_small_and_names_its_concerns():
    top = sorted(p.stem for p in (ROOT / "batchcore").glob("*.py"))
    assert len(top) <= 10, top
    packages = {p.name for p in (ROOT / "batchcore").iterdir() if (p / "__init__.py").exists()}
    assert packages == {"model", "frontends", "backends", "measure", "results", "explain", "run", "present", "studies"}


def backend_class_dispatch(tree: ast.AST) -> list[int]:
    """Lines of ``isinstance(x, SomethingBackend)`` (or a tuple holding one)."""
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "isinstance" and len(node.args) == 2:
            classes = node.args[1].elts if isinstance(node.args[1], ast.Tuple) else [node.args[1]]
            if any(getattr(c, "id", getattr(c, "attr", "")).endswith("Backend") and
                   getattr(c, "id", getattr(c, "attr", "")) != "Backend" for c in classes):
                lines.append(node.lineno)
    return lines


def test_only_backends_dispatch_on_backend_classes():
    """Who runs which model is the backends' own answer (Backend.runs), not an isinstance ladder elsewhere."""
    found = {str(p.relative_to(ROOT)): lines for p in (ROOT / "batchcore").rglob("*.py")
             if "backends" not in p.parts and (lines := backend_class_dispatch(ast.parse(p.read_text())))}
    assert not found, found
    planted = ast.parse("if isinstance(b, TorchBackend) or isinstance(b, (Model, bk.NativeBackend)): pass")
    assert backend_class_dispatch(planted) == [1, 1]

"""The layer rules of docs/architecture.md, checked on the source: the module import graph of hwgen and sw_model
has no cycle (every import counts, at module level or inside a function), the specification never reaches the
gateware, Amaranth or a test folder, and nothing edits sys.path."""
import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("hwgen", "sw_model")
TEST_FOLDERS = ("tests", "rtl_tests", "benchmarks", "harness", "bulk", "streams")


def modules() -> dict[str, Path]:
    out = {}
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def imports_of(name: str, path: Path, known: set) -> set[str]:
    """Modules of hwgen/sw_model that `name` imports (a `from pkg import sub` of a submodule counts as sub)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[:len(parts) - node.level + 1] + ([base] if base else []))
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
        else:
            continue
        found |= {t for t in targets if t.split(".")[0] in PACKAGES or t.split(".")[0] in TEST_FOLDERS}
    return found


def graph() -> dict[str, set[str]]:
    mods = modules()
    return {name: imports_of(name, path, set(mods)) - {name} for name, path in mods.items()}


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == "open":
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        state[node] = "done"
        stack.pop()
        return None

    for node in sorted(edges):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_import_graph_is_acyclic():
    edges = graph()
    # a package __init__ that re-exports its submodules is not a cycle: importing a submodule runs it first
    edges = {a: {b for b in bs if not (edges.get(b) is not None and a.startswith(b + "."))} for a, bs in edges.items()}
    cycle = find_cycle(edges)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_the_cycle_finder_names_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_specification_never_imports_gateware_amaranth_or_tests():
    for name, path in modules().items():
        if not name.startswith("sw_model"):
            continue
        text = path.read_text()
        bad = {t for t in imports_of(name, path, set(modules())) if not t.startswith("sw_model")}
        assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}"
        assert "import amaranth" not in text and "from amaranth" not in text, f"{path.relative_to(ROOT)} uses amaranth"


def test_package_never_imports_test_folders_or_edits_sys_path():
    mods = modules()
    for name, path in mods.items():
        bad = {t for t in imports_of(name, path, set(mods)) if t.split(".")[0] in TEST_FOLDERS}
        assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}"
        assert "sys.path" not in path.read_text(), f"{path.relative_to(ROOT)} edits sys.path"


def test_families_do_not_import_the_registries():
    """The registries import the families, never the other way round (the old circle)."""
    for name, path in modules().items():
        if name.split(".")[0:2][-1] in ("lmul", "bitmod", "sparse", "attention", "snn"):
            bad = {t for t in imports_of(name, path, set(modules()))
                   if t in ("sw_model.registry", "sw_model.units", "hwgen.units", "hwgen.flow.generate")}
            assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}"

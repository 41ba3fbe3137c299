"""The apps are layered one way, console → logs → analytics → alerts: a lower app never
imports a higher one (at module level or inside a function), except ingest's rollup write;
and no project modules import each other in a circle at module level (Celery's tasks import
their jobs inside functions)."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LAYERS = ("console", "logs", "analytics", "alerts")
# logs.ingest adds a batch's rollups in the same transaction as its rows.
ALLOWED_UP = {"logs/ingest/services.py": "analytics.rollups"}


def _sources():
    for app in LAYERS:
        for path in sorted((ROOT / app).rglob("*.py")):
            relative = path.relative_to(ROOT).as_posix()
            if "/migrations/" not in relative:
                yield relative, ast.parse(path.read_text())


def _module_of(relative: str) -> str:
    dotted = relative.removesuffix(".py").replace("/", ".")
    return dotted.removesuffix(".__init__")


def _imports(tree, *, top_level_only: bool):
    """(module, names) of each import; `import a.b` gives ("a.b", [])."""
    nodes = tree.body if top_level_only else ast.walk(tree)
    for node in nodes:
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, []
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module, [alias.name for alias in node.names]


def up_arrows(sources) -> list[str]:
    found = set()
    for relative, tree in sources:
        rank = LAYERS.index(relative.split("/")[0])
        allowed = ALLOWED_UP.get(relative)
        for module, names in _imports(tree, top_level_only=False):
            app = module.split(".")[0]
            if app not in LAYERS or LAYERS.index(app) <= rank:
                continue
            # `from analytics import rollups` names the allowed module too
            targets = [f"{module}.{name}" for name in names] if module == app else [module]
            if allowed and all(t == allowed or t.startswith(allowed + ".") for t in targets):
                continue
            found.add(f"{relative} imports {module}")
    return sorted(found)


def circles(sources) -> list[list[str]]:
    sources = list(sources)
    modules = {_module_of(relative) for relative, _ in sources}
    edges = {}
    for relative, tree in sources:
        targets = set()
        for module, names in _imports(tree, top_level_only=True):
            # `from package import submodule` needs the submodule, not the package's __init__
            submodules = {f"{module}.{name}" for name in names} & modules
            targets |= submodules or ({module} & modules)
        edges[_module_of(relative)] = targets - {_module_of(relative)}
    # Tarjan's strongly connected components; a component of two or more is a circle.
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def test_no_app_imports_a_higher_layer():
    assert up_arrows(_sources()) == []


def test_no_module_level_import_circle():
    assert circles(_sources()) == []


def test_the_checks_catch_what_they_look_for():
    lazy_up = ast.parse("def f():\n    from analytics.usage import totals\n")
    assert up_arrows([("logs/selectors.py", lazy_up)]) == ["logs/selectors.py imports analytics.usage"]
    allowed = ast.parse("from analytics import rollups\n")
    assert up_arrows([("logs/ingest/services.py", allowed)]) == []
    assert up_arrows([("logs/views.py", allowed)]) == ["logs/views.py imports analytics"]
    other = ast.parse("from analytics import rollups, usage\n")
    assert up_arrows([("logs/ingest/services.py", other)]) == ["logs/ingest/services.py imports analytics"]
    pair = [("logs/a.py", ast.parse("from logs.b import x\n")), ("logs/b.py", ast.parse("import logs.a\n"))]
    assert circles(pair) == [["logs.a", "logs.b"]]
    lazy = [
        ("logs/a.py", ast.parse("from logs.b import x\n")),
        ("logs/b.py", ast.parse("def f():\n    import logs.a\n")),
    ]
    assert circles(lazy) == []

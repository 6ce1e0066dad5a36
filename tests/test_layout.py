"""The package layout follows the data flow: no import circles, no import against the stage order.

Every import statement counts: module level, inside functions and under ``TYPE_CHECKING``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "fervid"

#: The stages in data-flow order (docs/design.md). A module may import its own stage and the
#: stages before it, never one after it.
STAGE_ORDER = (
    "errors", "files", "progress", "number_ranges", "samples", "config",
    "datasets", "synth", "faces", "representation", "models", "losses", "training",
    "metrics", "runs", "protocol", "data", "report", "prepare", "predict", "cli",
)
#: Top-level modules beside ``__init__`` and ``__main__`` (the first stages are single modules).
MAX_TOP_LEVEL_MODULES = 8
#: The files allowed to call ``.backward(``: the shared loop and the fold-batched engine.
BACKWARD_FILES = {"training/loop.py", "training/fold_batched.py"}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def all_modules() -> dict[str, Path]:
    return {module_name(p): p for p in SRC.rglob("*.py")}


def imports_of(path: Path, name: str, known: set[str]) -> list[tuple[int, str]]:
    """``(line, module)`` for every fervid import in ``path``, resolved to the most specific
    module that exists (``from fervid.models import smastn`` → ``fervid.models.smastn``)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[:len(anchor) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            for alias in node.names:
                full = f"{base}.{alias.name}"
                found.append((node.lineno, full if full in known else base))
    return [(line, m) for line, m in found if m == "fervid" or m.startswith("fervid.")]


def stage_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def import_graph() -> dict[str, list[tuple[int, str]]]:
    modules = all_modules()
    return {name: imports_of(path, name, set(modules)) for name, path in modules.items()}


def test_every_stage_is_declared():
    stages = {stage_of(m) for m in all_modules()} - {None, "__main__"}
    assert stages <= set(STAGE_ORDER), f"outside the stage order: {stages - set(STAGE_ORDER)}"


def test_no_import_goes_against_the_stage_order():
    rank = {s: i for i, s in enumerate(STAGE_ORDER)}
    rank["__main__"] = len(STAGE_ORDER)
    wrong = []
    for module, imports in import_graph().items():
        here = stage_of(module)
        if here is None:  # fervid/__init__.py imports nothing eagerly
            assert not imports, f"fervid/__init__.py imports {imports}"
            continue
        for line, target in imports:
            there = stage_of(target)
            if there is None or rank[there] > rank[here]:
                wrong.append(f"{module}:{line} imports {target} ({here} → {there})")
    assert not wrong, "imports against the stage order:\n" + "\n".join(wrong)


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle of ``graph``, or None (iterative depth-first search)."""
    state: dict[str, int] = {}
    for root in graph:
        if state.get(root):
            continue
        stack, path = [(root, iter(sorted(graph[root])))], [root]
        state[root] = 1
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                stack.pop()
                path.pop()
                state[node] = 2
            elif state.get(child) == 1:
                return path[path.index(child):] + [child]
            elif not state.get(child):
                state[child] = 1
                stack.append((child, iter(sorted(graph.get(child, ())))))
                path.append(child)
    return None


def test_no_import_circles():
    graph = {m: {t for _, t in imports if t != m} for m, imports in import_graph().items()}
    cycle = find_cycle(graph)
    assert cycle is None, "import circle: " + " → ".join(cycle)


def test_cycle_finder_finds_a_circle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None


@pytest.mark.parametrize("source, expected", [
    ("from fervid.models import smastn\n", "fervid.models.smastn"),
    ("def f():\n    from fervid import config\n", "fervid.config"),
    ("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import fervid.files\n",
     "fervid.files"),
])
def test_imports_are_found_everywhere(tmp_path, source, expected):
    path = tmp_path / "m.py"
    path.write_text(source)
    found = imports_of(path, "fervid.cli.m", set(all_modules()))
    assert [m for _, m in found] == [expected]


def test_few_top_level_modules():
    top = sorted(p.name for p in SRC.glob("*.py") if p.name not in ("__init__.py", "__main__.py"))
    assert len(top) <= MAX_TOP_LEVEL_MODULES, f"{len(top)} top-level modules: {top}"


def test_backward_only_in_the_training_core():
    calling = {str(p.relative_to(SRC)) for p in SRC.rglob("*.py")
               if ".backward(" in p.read_text()}
    assert calling <= BACKWARD_FILES, f".backward( outside the core: {calling - BACKWARD_FILES}"


def _sources_with(pattern: str) -> set[str]:
    """The files under src/fervid whose code (comments aside) matches ``pattern``."""
    import re

    found = set()
    for path in SRC.rglob("*.py"):
        code = "\n".join(line.split("#", 1)[0] for line in path.read_text().splitlines())
        if re.search(pattern, code):
            found.add(str(path.relative_to(SRC)))
    return found


def test_one_module_holds_the_epoch_loop():
    """Every protocol trains through training/trainer.py; only the fold-batched STSTNet engine
    has a loop of its own (issue 20)."""
    assert _sources_with(r"for epoch in range\(") == {"training/trainer.py",
                                                       "training/fold_batched.py"}
    assert _sources_with(r"\btrain_one_epoch\(") == {"training/trainer.py", "training/loop.py"}


def test_fabric_is_constructed_in_one_module():
    assert _sources_with(r"\bFabric\(") == {"training/setup.py"}


def test_dataset_names_are_written_in_one_place():
    """A dataset's name is written only in the reader file that registers it (the scan and its
    one listed exception live in tests/test_dataset_registry.py)."""
    from test_dataset_registry import test_dataset_names_are_written_only_where_they_register

    test_dataset_names_are_written_only_where_they_register()

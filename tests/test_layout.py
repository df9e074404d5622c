"""The package's layering, read from its import statements: each subpackage imports only those below it."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "pipeline"
# Bottom to top: each may import those before it (and itself), never one after it.
LAYERS = ("serving", "data", "training", "analysis", "tracking", "tuning", "page")
ENTRY_POINTS = (
    "prep",
    "train",
    "evaluate",
    "promote",
    "search",
    "ensemble",
    "bench",
    "report",
    "main",
    "predict",
    "demo",
)


def imported(path):
    """The `pipeline.*` modules a file imports, anywhere in it (function-level imports too)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("pipeline"):
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.startswith("pipeline"))
    return found


def part(module):
    """The subpackage or top-level module a dotted `pipeline.*` name belongs to."""
    pieces = module.split(".")
    return pieces[1] if len(pieces) > 1 else None


@pytest.mark.parametrize("layer", LAYERS)
def test_a_subpackage_imports_only_those_below_it(layer):
    allowed = set(LAYERS[: LAYERS.index(layer) + 1])
    for path in (PACKAGE / layer).glob("*.py"):
        above = {module for module in imported(path) if part(module) not in allowed and part(module) in LAYERS}
        tops = {module for module in imported(path) if part(module) not in LAYERS and part(module) is not None}
        assert not above, f"{path.relative_to(PACKAGE)} imports {sorted(above)}, above {layer}"
        assert not tops, f"{path.relative_to(PACKAGE)} imports the entry-point level: {sorted(tops)}"


def test_the_top_level_is_the_entry_points_and_their_argument_handling():
    modules = {path.stem for path in PACKAGE.glob("*.py")} - {"__init__"}
    assert modules == set(ENTRY_POINTS) | {"arguments", "console"}
    subpackages = {path.parent.name for path in PACKAGE.glob("*/__init__.py")}
    assert subpackages == set(LAYERS)


def test_the_mlproject_commands_are_one_line_module_runs():
    import yaml

    project = yaml.safe_load((PACKAGE.parent / "MLproject").read_text())
    for name, entry in project["entry_points"].items():
        command = entry["command"]
        assert "\n" not in command.strip() and command.startswith("python -u -m pipeline."), name
        assert command.split()[3].removeprefix("pipeline.") in ENTRY_POINTS, name

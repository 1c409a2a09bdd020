"""The package's layers import one way: the core ← data, deploy ← search (of the two, data: it reads corpus files),
training (deploy) ← tasks and tools ← cli; search and training independent of each other. A generic layer never
imports a task, a task never imports another task, and model code never reaches into its data module."""

import ast
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "ftlit"
# What each layer may import besides itself (``core`` is the top-level helpers every layer shares)
CORE = {
    "ftlit.errors",
    "ftlit.settings",
    "ftlit.pretrained",
    "ftlit.contract",
    "ftlit._lightning",
    "ftlit._transformers",
    "ftlit.machine",
    "ftlit.registry",
}
ALLOWED = {
    "core": {"core"},
    "data": {"core"},
    "deploy": {"core"},
    "search": {"core", "data"},  # a corpus file is read, and refused, as any other data file
    "training": {"core", "deploy"},  # a module runs its model in PyTorch or, for inference, ONNX Runtime
    "tools": {"core", "data", "training", "deploy", "search"},
    "task": {"core", "data", "training", "deploy", "search"},  # and its own package
    "entry": {"core", "data", "training", "deploy", "search", "tools", "task"},
}


def layer(module: str) -> str:
    if module in CORE:
        return "core"
    parts = module.split(".")
    if len(parts) > 1 and parts[1] in ("data", "training", "deploy", "search", "tools"):
        return parts[1]
    if len(parts) > 2 and parts[1] == "tasks":
        return "task"
    return "entry"  # ftlit, ftlit.cli, ftlit.__main__, ftlit.tasks


def modules() -> dict[str, Path]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = ["ftlit", *path.relative_to(PACKAGE).with_suffix("").parts]
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def ftlit_imports(path: Path) -> set[str]:
    """The ftlit modules ``path`` imports (a name imported from a package counts as that package's module when it
    is one)."""
    known = modules()
    imported = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            imported |= {alias.name for alias in node.names if alias.name.startswith("ftlit")}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("ftlit"):
            for alias in node.names:
                submodule = f"{node.module}.{alias.name}"
                imported.add(submodule if submodule in known else node.module)
    return imported


def task_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[2] if len(parts) > 2 and parts[1] == "tasks" else None


def forbidden_imports(module: str, imported: set[str]) -> list[str]:
    wrong = []
    for target in sorted(imported):
        if layer(target) not in ALLOWED[layer(module)] | {layer(module)}:
            wrong.append(target)
        elif layer(module) == layer(target) == "task" and task_of(module) != task_of(target):
            wrong.append(target)  # one task using another
    return wrong


@pytest.mark.parametrize("module", sorted(modules()))
def test_imports_point_down_the_layers(module):
    assert forbidden_imports(module, ftlit_imports(modules()[module])) == []


def test_the_rule_catches_a_generic_layer_importing_a_task_and_a_task_importing_another():
    assert forbidden_imports("ftlit.data.base", {"ftlit.tasks.classification.data"}) == [
        "ftlit.tasks.classification.data"
    ]
    assert forbidden_imports("ftlit.training.module", {"ftlit.tools.comparison"}) == ["ftlit.tools.comparison"]
    assert forbidden_imports("ftlit.tasks.question_answering.model", {"ftlit.tasks.classification.metrics"}) == [
        "ftlit.tasks.classification.metrics"
    ]
    assert forbidden_imports("ftlit.tasks.question_answering.model", {"ftlit.training.module"}) == []


def test_model_code_never_reads_the_data_module():
    # the one handover is ContractHandover, the callback that gives the contract to the model at setup
    readers = {
        module
        for module, path in modules().items()
        if re.search(r"\.datamodule\b", path.read_text()) and (module.endswith(".model") or "training" in module)
    }
    assert readers == {"ftlit.training.model_callbacks"}
    source = modules()["ftlit.training.model_callbacks"].read_text()
    assert source.count("datamodule") == 1 and 'getattr(trainer.datamodule, "contract", None)' in source

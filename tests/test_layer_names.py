"""One name per concept per layer: no KFP component has the name of a library function (the library keeps
the verb, the component is the noun), no CLI command function repeats a library function it could shadow,
and no module is called just `plan`."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def functions(paths) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for path in paths:
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.FunctionDef):
                found.setdefault(node.name, []).append(str(path.relative_to(ROOT)))
    return found


def component_names() -> set[str]:
    names = set()
    for path in (ROOT / "components").glob("*.py"):
        for node in ast.parse(path.read_text()).body:
            decorators = [ast.unparse(d) for d in getattr(node, "decorator_list", [])]
            if isinstance(node, ast.FunctionDef) and "project_component" in decorators:
                names.add(node.name)
    return names


def test_components_do_not_reuse_library_names():
    components = component_names()
    assert {"model_evaluation", "shard_curation", "stage_training", "dataset_versioning"} <= components
    library = functions(p for p in (ROOT / "kangaroo").rglob("*.py") if p.name != "cli.py")
    clashes = {name: library[name] for name in components if name in library}
    assert not clashes, clashes


def test_cli_functions_do_not_repeat_library_functions():
    cli = functions((ROOT / "kangaroo").rglob("cli.py"))
    library = functions(p for p in (ROOT / "kangaroo").rglob("*.py") if p.name != "cli.py")
    clashes = {name: (cli[name], library[name]) for name in cli if name in library and name != "main"}
    assert not clashes, clashes


def test_no_module_is_just_a_plan():
    """Four modules were called `plan`; each now says what it plans (frames, clips, model size, memory)."""
    planners = sorted(p.name for p in (ROOT / "kangaroo").rglob("*plan*.py"))
    assert planners == ["clip_plan.py", "frame_plan.py", "memory_plan.py"], planners
    assert (ROOT / "kangaroo" / "model" / "footprint.py").is_file()

"""params.yaml holds only the profiles' choices: defaults live in the typed settings (kangaroo/*/settings.py),
so a value in the file must change what some profile resolves to, and a default must be what some profile
reads. Notes and measurements belong in docs/, which keeps the file small."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from kangaroo.config import ConfigError, Params, validate_params_tree

ROOT = Path(__file__).resolve().parents[1]
PARAMS = ROOT / "params.yaml"
MAX_BYTES = 12 * 1024


def leaves(tree: dict[str, Any], prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Paths of every non-mapping value under `tree` (a list or scalar is one value)."""
    found = []
    for key, value in tree.items():
        path = (*prefix, key)
        found.extend(leaves(value, path) if isinstance(value, dict) and value else [path])
    return found


def without(tree: dict[str, Any], path: tuple[str, ...]) -> dict[str, Any]:
    pruned = copy.deepcopy(tree)
    node = pruned
    for key in path[:-1]:
        node = node[key]
    del node[path[-1]]
    return pruned


def resolved(tree: dict[str, Any]) -> dict[str, Any] | None:
    """Every profile's resolved params as JSON-able dicts, or None when the tree does not validate."""
    try:
        return {
            name: validate_params_tree(tree, "test", name, ()).model_dump(mode="json")
            for name in tree["profiles"]
        }
    except ConfigError:
        return None


@pytest.fixture(scope="module")
def tree() -> dict[str, Any]:
    return yaml.safe_load(PARAMS.read_text())


def test_params_yaml_is_small_and_holds_only_profiles(tree):
    size = PARAMS.stat().st_size
    assert size < MAX_BYTES, f"params.yaml is {size} bytes; move notes to docs/params-history.md"
    assert set(tree) == {"profile", "profiles"}, "shared values are the settings' defaults, not YAML blocks"
    assert tree["profile"] in tree["profiles"]


def needless_values(tree: dict[str, Any]) -> list[str]:
    """Values whose removal leaves every profile resolving the same: equal to their default."""
    baseline = resolved(tree)
    assert baseline is not None
    return [
        ".".join(path)
        for path in leaves(tree["profiles"], ("profiles",))
        if resolved(without(tree, path)) == baseline
    ]


def test_every_value_in_params_yaml_changes_some_profile(tree):
    """A value equal to its default is noise that drifts when the default changes."""
    needless = needless_values(tree)
    assert not needless, f"these params.yaml values equal their defaults; delete them: {needless}"


def field_paths(model: Any, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every leaf setting of a resolved Params (the same walk as `leaves`, over the model)."""
    from kangaroo.settings_base import Section

    found = []
    for name in type(model).model_fields:
        value = getattr(model, name)
        path = (*prefix, name)
        found.extend(field_paths(value, path) if isinstance(value, Section) else [path])
    return found


def set_in(tree: dict[str, Any], path: tuple[str, ...]) -> bool:
    node: Any = tree
    for key in path:
        if not isinstance(node, dict) or key not in node:
            return False
        node = node[key]
    return True


def dead_defaults(tree: dict[str, Any]) -> list[str]:
    """Settings that have a default which no profile reads (every profile sets its own value)."""
    params: Params = validate_params_tree(tree, "test", tree["profile"], ())
    profiles = tree["profiles"]
    dead = []
    for path in field_paths(params):
        if path == ("profile",) or not all(set_in(block or {}, path) for block in profiles.values()):
            continue
        stripped = copy.deepcopy(tree)
        for name in profiles:
            if set_in(stripped["profiles"][name] or {}, path):
                stripped = without(stripped, ("profiles", name, *path))
        if resolved(stripped) is not None:  # the setting has a default, and no profile reads it
            dead.append(".".join(path))
    return dead


def test_every_default_is_read_by_some_profile(tree):
    """A default that every profile overrides is dead and misleading (22 of them disagreed with the file):
    make one profile's choice the default instead."""
    dead = dead_defaults(tree)
    assert not dead, f"every profile overrides these defaults; make one profile's value the default: {dead}"


def test_the_checks_flag_a_planted_needless_value_and_dead_default(tree):
    planted = copy.deepcopy(tree)
    planted["profiles"]["tiny"].setdefault("eval", {})["batch_size"] = 16  # = EvalSettings' default
    assert needless_values(planted) == ["profiles.tiny.eval.batch_size"]
    planted = copy.deepcopy(tree)
    for block in planted["profiles"].values():
        block.setdefault("eval", {})["chance_sigma"] = 2.5  # every profile overrides the 3.0 default
    assert dead_defaults(planted) == ["eval.chance_sigma"]

"""Meta-tests: every hook spec is documented and has a test of its own."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

from veilbench import hookspecs

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("name", hookspecs.HOOK_NAMES)
def test_every_hook_is_documented_in_code_and_docs(name):
    spec = getattr(hookspecs, name)
    doc = inspect.getdoc(spec) or ""
    for param in inspect.signature(spec).parameters:
        assert f":param {param}:" in doc, f"{name}: parameter {param} undocumented"
    assert f"`{name}(" in (REPO / "docs" / "plugins.md").read_text(), f"{name} not in docs"


@pytest.mark.parametrize("name", hookspecs.HOOK_NAMES)
def test_every_hook_has_a_test(name):
    me = Path(__file__).name
    uses = [p for p in (REPO / "tests").glob("test_*.py") if p.name != me and name in p.read_text()]
    assert uses, f"no test exercises hook {name}"


def test_all_hookspecs_are_listed():
    declared = {n for n, f in vars(hookspecs).items() if hasattr(f, "veilbench_spec")}
    assert declared == set(hookspecs.HOOK_NAMES)

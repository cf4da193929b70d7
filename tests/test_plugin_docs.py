"""docs/plugins.md carries every plugin contract as its code documents it."""

from __future__ import annotations

import inspect

import pytest

from veilbench import hookspecs, plugin_docs
from veilbench.lazy import load


def test_docs_plugins_md_is_generated_from_the_contracts():
    text = plugin_docs.DOC.read_text()
    assert plugin_docs.updated(text) == text, (
        "docs/plugins.md is out of date: run python -m veilbench.plugin_docs"
    )


def test_a_changed_contract_makes_the_docs_stale(monkeypatch):
    text = plugin_docs.DOC.read_text()
    monkeypatch.setattr(
        hookspecs.register_attacks, "__doc__", "Register attacks.\n\n:param register: changed."
    )
    assert plugin_docs.updated(text) != text
    assert "- `register`: changed." in plugin_docs.render()


@pytest.mark.parametrize("name", hookspecs.HOOK_NAMES)
def test_every_hook_has_a_complete_example(name):
    doc = inspect.getdoc(getattr(hookspecs, name)) or ""
    assert "Example::" in doc and f"def {name}(" in doc.split("Example::")[1]


def test_every_hook_and_contract_is_rendered():
    rendered = plugin_docs.render()
    targets = [t for _, ts in plugin_docs.CONTRACTS for t in ts]
    assert {f"veilbench.hookspecs:{n}" for n in hookspecs.HOOK_NAMES} <= set(targets)
    for target in targets:
        assert f"### `{target.replace(':', '.')}`" in rendered
        if ":" in target:
            assert inspect.getdoc(load(target)), f"{target} has no docstring"


def test_rst_docstrings_become_markdown():
    md = plugin_docs.markdown(
        "Uses :class:`~a.b.Thing` and ``x``.\n\n:param y: why.\n\nExample::\n\n    call()\n"
    )
    assert md == "Uses `Thing` and `x`.\n\n- `y`: why.\n\nExample:\n\n```python\ncall()\n```"

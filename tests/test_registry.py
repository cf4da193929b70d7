from __future__ import annotations

import pytest

from veilbench.errors import RegistryError
from veilbench.registry import Registry


def make(*names: str) -> Registry:
    reg = Registry("models")
    for n in names:
        reg.register(n, lambda: None, plugin="p1")
    return reg


def test_all_lists_and_natural_sort():
    reg = make("iresnet100", "iresnet18", "sface", "iresnet50")
    assert [e.name for e in reg.select("all")] == ["iresnet18", "iresnet50", "iresnet100", "sface"]
    assert [e.name for e in reg.select("sface,iresnet18")] == ["sface", "iresnet18"]


def test_wildcards_and_exclusions():
    reg = make("iresnet18", "iresnet50", "sface", "facenet")
    assert [e.name for e in reg.select("iresnet*")] == ["iresnet18", "iresnet50"]
    assert [e.name for e in reg.select("all,-iresnet*")] == ["facenet", "sface"]
    assert [e.name for e in reg.select("-sface")] == ["facenet", "iresnet18", "iresnet50"]


def test_unknown_name_suggests_close_matches():
    reg = make("sface", "facenet")
    with pytest.raises(RegistryError, match="did you mean sface"):
        reg.select("sfce")


def test_pattern_matching_nothing_is_an_error():
    with pytest.raises(RegistryError, match="matches no models"):
        make("sface").select("iresnet*")


def test_selection_that_selects_nothing_is_an_error():
    with pytest.raises(RegistryError, match="selects nothing"):
        make("sface").select("sface,-sface")


def test_duplicate_name_names_both_plugins():
    reg = make("sface")
    with pytest.raises(RegistryError, match="'p1'.*'p2'"):
        reg.register("sface", lambda: None, plugin="p2")


def test_invalid_names_rejected():
    with pytest.raises(RegistryError):
        make().register("a,b", lambda: None, plugin="p")

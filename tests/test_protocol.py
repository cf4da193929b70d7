from __future__ import annotations

from pathlib import Path

import pytest

from veilbench.data.datasets import FaceDataset, ImageRef
from veilbench.data.protocol import ProtocolConfig, split
from veilbench.errors import ConfigError, DataError


def dataset(counts: dict[str, int]) -> FaceDataset:
    refs = [
        ImageRef(n, Path(f"/x/{n}/{n}_{i:04d}.jpg")) for n, c in counts.items() for i in range(c)
    ]
    return FaceDataset("toy", Path("/x"), refs)


def test_split_rules():
    ds = dataset({"p1": 25, "p2": 20, "p3": 30, "small": 19, "single": 1})
    s = split(ds, ProtocolConfig(identities=2, seed=1))
    assert len(s.probes) == 2
    for p in s.probes:
        assert len(p.craft) == 10 and len(p.enrol) == 5 and len(p.held_out) >= 5
        parts = [set(map(str, x)) for x in (p.craft, p.enrol, p.held_out)]
        assert not (parts[0] & parts[1] or parts[0] & parts[2] or parts[1] & parts[2])
    probe_names = {p.identity for p in s.probes}
    gallery_ids = {r.identity for r in s.gallery()}
    assert {"small", "single"} <= gallery_ids
    # probes' crafting and held-out photos never enter the gallery
    queries = {str(r.path) for p in s.probes for r in p.craft + p.held_out}
    assert not queries & {str(r.path) for r in s.gallery()}
    assert probe_names <= gallery_ids  # via enrolment photos


def test_split_is_seeded_and_recorded():
    ds = dataset({f"p{i}": 22 for i in range(6)})
    a = split(ds, ProtocolConfig(identities=3, seed=7)).to_dict()
    b = split(ds, ProtocolConfig(identities=3, seed=7)).to_dict()
    c = split(ds, ProtocolConfig(identities=3, seed=8)).to_dict()
    assert a == b and a != c


def test_too_few_photos_is_reported():
    with pytest.raises(DataError, match="no identity with >= 20"):
        split(dataset({"a": 5}), ProtocolConfig())


def test_usable_filter_and_bad_config():
    ds = dataset({"p": 20, "q": 21})
    usable = {
        str(r.path) for r in ds.refs if not (r.identity == "p" and r.path.name.endswith("0001.jpg"))
    }
    s = split(ds, ProtocolConfig(identities=0), usable=usable)
    assert [p.identity for p in s.probes] == ["q"]
    assert s.skipped_identities[0]["identity"] == "p"
    with pytest.raises(ConfigError):
        split(ds, ProtocolConfig(min_images=10, n_craft=10, n_enrol=5))

"""Fuzzing (hypothesis): no veil file and no config value gives a traceback or silent garbage.

Every input either loads into something usable (typed, finite, in range) or raises the
one-line error the CLI shows (VeilFileError / ConfigError). Sized to run in seconds.
"""

from __future__ import annotations

import functools
import io
import json
import math
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from veilbench.config import RunConfig, build_config, load_config
from veilbench.errors import ConfigError, VeilFileError
from veilbench.protectors import VeilProtector
from veilbench.veilfile import Veil, apply_veil, load_veil, recover_images, save_veil

S = 8
FUZZ = settings(
    max_examples=80,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8),
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=8,
)
META_KEYS = [
    "format",
    "format_version",
    "alpha",
    "protector",
    "identity",
    "config",
    "surrogates",
    "image_sha256",
    "clip",
    "shape",
    "stats",
    "seed",
    "version",
    "created",
]


@functools.cache
def _valid_file() -> bytes:
    """One valid veil file's bytes, made once (hypothesis needs the same input every run)."""
    pixels = torch.randint(0, 256, (3, S, S), generator=torch.Generator().manual_seed(0)).float()
    veil = Veil(veil=pixels, alpha=0.2, protector="veil", seed=1, created="2026-01-01T00:00:00Z")
    with tempfile.TemporaryDirectory() as folder:
        return save_veil(Path(folder) / "v.veil", veil).read_bytes()


def _valid() -> tuple[dict, bytes]:
    with zipfile.ZipFile(io.BytesIO(_valid_file())) as z:
        return json.loads(z.read("meta.json")), z.read("veil.png")


def _write(path, members: dict[str, bytes]) -> None:
    with zipfile.ZipFile(path, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)


def _npy(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=False)
    return buf.getvalue()


def _usable_or_refused(path) -> None:
    """The property: a clear refusal, or a veil that protects and recovers to finite images."""
    try:
        veil = load_veil(path)
    except VeilFileError as exc:
        assert "\n" not in str(exc)
        return
    assert 0 < veil.alpha < 1 and math.isfinite(veil.alpha)
    assert bool(torch.isfinite(veil.veil).all())
    assert veil.veil.shape[-3] == 3 and veil.veil.shape[-1] == veil.veil.shape[-2]
    images = torch.full(
        (veil.veil.shape[0] if veil.per_image else 1, 3, veil.size, veil.size), 99.0
    )
    for out in (apply_veil(veil, images), recover_images(veil, images)):
        assert bool(torch.isfinite(out).all()) and out.min() >= 0 and out.max() <= 255


@FUZZ
@given(
    changes=st.dictionaries(st.sampled_from(META_KEYS), json_values, max_size=4),
    drop=st.sets(st.sampled_from(META_KEYS), max_size=2),
)
def test_fuzzed_metadata_loads_cleanly_or_is_refused(tmp_path, changes, drop):
    meta, png = _valid()
    meta.update(changes)
    for key in drop:
        meta.pop(key, None)
    path = tmp_path / "fuzz.veil"
    _write(path, {"meta.json": json.dumps(meta).encode(), "veil.png": png})
    _usable_or_refused(path)


@FUZZ
@given(
    dtype=st.sampled_from(["float32", "float64", "int16", "uint8", "bool", "complex64", "<U2"]),
    shape=st.lists(st.integers(0, 9), min_size=0, max_size=5),
    special=st.sampled_from([0.0, float("nan"), float("inf"), -1e30, 300.0]),
)
def test_fuzzed_pixel_arrays_load_cleanly_or_are_refused(tmp_path, dtype, shape, special):
    meta, _ = _valid()
    array = np.full(shape, 7).astype(dtype)
    if array.size and array.dtype.kind in "fc":
        array.flat[0] = special
    path = tmp_path / "fuzz.veil"
    _write(path, {"meta.json": json.dumps(meta).encode(), "veil.npy": _npy(array)})
    _usable_or_refused(path)


@FUZZ
@given(data=st.data())
def test_bit_flipped_and_truncated_files_are_refused_or_still_valid(tmp_path, data):
    raw = bytearray(_valid_file())
    for _ in range(data.draw(st.integers(1, 8))):
        i = data.draw(st.integers(0, len(raw) - 1))
        raw[i] ^= 1 << data.draw(st.integers(0, 7))
    cut = data.draw(st.integers(0, len(raw)))
    path = tmp_path / "flipped.veil"
    path.write_bytes(bytes(raw[:cut]))
    _usable_or_refused(path)


toml_values = st.one_of(
    st.booleans(),
    st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(alphabet="abcxyz,-*_ 01", max_size=6),
    st.lists(st.integers(-5, 5), max_size=3),
    st.lists(st.text(alphabet="abc", max_size=3), max_size=2),
)
RUN_KEYS = [
    k for k in RunConfig().to_dict() if k not in ("protocol", "protector_params", "attack_sweeps")
]


def _toml(value) -> str:
    return (
        json.dumps(value).replace("NaN", "nan")
        if not isinstance(value, bool)
        else str(value).lower()
    )


@FUZZ
@given(
    run=st.dictionaries(st.sampled_from(RUN_KEYS), toml_values, max_size=3),
    protocol=st.dictionaries(
        st.sampled_from(["min_images", "n_craft", "n_enrol", "identities", "max_distractors"]),
        toml_values,
        max_size=2,
    ),
    protector=st.dictionaries(
        st.sampled_from(["iterations", "alpha", "mu_var", "init", "early_stop", "step_start"]),
        toml_values,
        max_size=2,
    ),
    sweep=st.one_of(st.none(), toml_values),
)
def test_fuzzed_config_values_are_typed_or_refused(tmp_path, run, protocol, protector, sweep):
    lines = ["[run]", *(f"{k} = {_toml(v)}" for k, v in run.items()), "[protocol]"]
    lines += [f"{k} = {_toml(v)}" for k, v in protocol.items()]
    lines += ["[protector]", *(f"{k} = {_toml(v)}" for k, v in protector.items())]
    if sweep is not None:
        lines += ["[attacks.sweeps]", f"gaussian = {_toml(sweep)}"]
    path = tmp_path / "fuzz.toml"
    path.write_text("\n".join(lines) + "\n")
    try:
        config = build_config(load_config(path), {})
        cfg = VeilProtector(**config.protector_params).config
    except ConfigError as exc:
        assert "\n" not in str(exc)
        return
    defaults = RunConfig()
    for key in RUN_KEYS:
        value, default = getattr(config, key), getattr(defaults, key)
        if default is not None:
            assert type(value) is type(default), (key, value)
    for key in ("min_images", "n_craft", "n_enrol", "identities"):
        assert type(getattr(config.protocol, key)) is int
    assert type(cfg.iterations) is int and type(cfg.early_stop) is bool
    assert isinstance(cfg.alpha, float) and 0 < cfg.alpha < 1
    assert all(math.isfinite(v) for vs in config.attack_sweeps.values() for v in vs)


@pytest.mark.parametrize(
    "line, words",
    [
        ('seed = "zero"', "seed must be an integer"),
        ('models = ["sface"]', "models must be a string"),
        ("samples = 1", "samples must be true or false"),
    ],
)
def test_reported_config_typos_are_one_line_errors(tmp_path, line, words):
    path = tmp_path / "c.toml"
    path.write_text(f"[run]\n{line}\n")
    with pytest.raises(ConfigError, match=words):
        build_config(load_config(path), {})


def test_fractional_iterations_are_refused():
    with pytest.raises(ConfigError, match="iterations=2.5 is not a valid int"):
        VeilProtector(iterations=2.5)

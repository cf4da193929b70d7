"""The test plugin end to end, through veilbench's pytest fixtures (veilbench.testing)."""

from __future__ import annotations

import vb_testpkg

from veilbench.testing import invoke


def test_every_kind_is_registered(veilbench_plugins):
    plugins = veilbench_plugins(vb_testpkg)
    assert plugins.info["vb_testpkg"].status == "loaded"
    for kind, name in [
        ("models", "testpkg_random"),
        ("protectors", "testpkg_stripes"),
        ("protectors", "testpkg_mosaic"),
        ("attacks", "testpkg_invert"),
        ("datasets", "testpkg_faces"),
    ]:
        assert plugins.registries[kind].get(name).plugin == "vb_testpkg"
    assert invoke("testpkg-hello", "plugin").output == "hello plugin from testpkg\n"
    listed = invoke("list", "models").output
    assert "testpkg_random" in listed and "random weights, plumbing only  [vb_testpkg]" in listed


def test_a_recoverable_protector_runs_end_to_end(veilbench_plugins, veilbench_run):
    veilbench_plugins(vb_testpkg)
    doc = veilbench_run(
        protector="testpkg_stripes",
        models="testpkg_random",
        dataset="testpkg_faces",
        attacks="testpkg_invert",
        param={"period": "4"},
    )
    assert doc.config["protector_config"] == {"alpha": 0.3, "period": 4}
    result = doc.results.surrogate_set("testpkg_random").measurements
    cell = result["msr"]["testpkg_random"]["held_out"]
    assert cell.n == 2 and 0.0 <= cell.msr.value <= 1.0
    assert result["image_quality"].recovered.ssim > 0.99  # the blend undone up to rounding
    assert result["robustness"]["testpkg_invert"].strengths == [0.0, 0.5]


def test_a_protector_without_secret_or_recovery_has_no_recovered_figures(
    veilbench_plugins, veilbench_run
):
    veilbench_plugins(vb_testpkg)
    doc = veilbench_run(
        protector="testpkg_mosaic", models="testpkg_random", dataset="testpkg_faces"
    )
    metrics = doc.results.surrogate_set("testpkg_random").measurements["image_quality"]
    assert metrics.recovered is None and metrics.protected.ssim < 1.0


def test_the_tiny_fixtures_run_with_a_builtin_protector(veilbench_plugins, veilbench_run):
    veilbench_plugins()
    doc = veilbench_run(protector="none", models="tiny_random", dataset="tiny_faces")
    assert doc.dataset["synthetic"] and doc.models["tiny_random"]["pretrained"] is False

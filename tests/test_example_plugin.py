"""The example plugin (plugins/example) works as docs/plugins.md says, one kind at a time."""

from __future__ import annotations

import copy
import json
import sys
from pathlib import Path

import pytest
import torch

from veilbench.compare import compare
from veilbench.errors import DataError
from veilbench.plugins import reset_plugins
from veilbench.results import ResultsDocument, read_results, validate
from veilbench.testing import TINY_FACES, TINY_MODEL, invoke, run_in_process, use_plugins

EXAMPLE = Path(__file__).resolve().parents[1] / "plugins" / "example"


@pytest.fixture
def example(monkeypatch):
    monkeypatch.syspath_prepend(str(EXAMPLE))
    for name in [m for m in sys.modules if m.startswith("veilbench_example")]:
        monkeypatch.delitem(sys.modules, name)
    import veilbench_example

    plugins = use_plugins(example=veilbench_example)
    yield plugins
    reset_plugins()


def test_example_registers_one_of_each_kind(example):
    assert example.info["example"].status == "loaded"
    assert example.info["example"].hooks == [
        "register_attacks",
        "register_commands",
        "register_datasets",
        "register_measurements",
        "register_models",
        "register_protectors",
    ]
    assert invoke("example-info").output.startswith("posterize, example_grey")


def test_example_blur_has_no_recovery_in_results_report_and_craft(example, tmp_path):
    doc = run_in_process(
        tmp_path / "run", protector="example_blur", models=TINY_MODEL, dataset=TINY_FACES
    )
    result = doc.results.protectors["example_blur"].surrogates[TINY_MODEL].measurements
    assert result["image_quality"].recovered is None
    assert 0.0 < result["image_quality"].protected.ssim < 1.0  # blurred, not unchanged
    assert result["samples"]
    assert all("recovered" not in s for s in result["samples"].values())
    report = (tmp_path / "run" / "report.html").read_text()
    assert "no recovery (protector cannot be undone)" in report
    # The plugin's measurement: in results.json, the report and compare, named by no veilbench code.
    raw = json.loads((tmp_path / "run" / "results.json").read_text())
    sets = raw["results"]["protectors"]["example_blur"]["surrogates"]
    brightness = sets[TINY_MODEL]["measurements"]["example_brightness"]
    assert brightness["n"] > 0 and 0 < brightness["protected"] < 255
    assert 'id="example-brightness"' in report and 'href="#example-brightness"' in report
    validate(raw)  # the published schema takes the plugin's record
    darker = copy.deepcopy(raw)
    darker["results"]["protectors"]["example_blur"]["surrogates"][TINY_MODEL]["measurements"][
        "example_brightness"
    ]["protected"] += 40.0
    rows = {
        r.metric: r
        for r in compare(
            read_results(tmp_path / "run" / "results.json"), ResultsDocument.from_dict(darker)
        ).rows
    }
    assert rows[f"brightness/{TINY_MODEL}"].status == "REGRESSION"  # its own direction, tol 0
    result = invoke(
        "craft",
        "--images",
        str(tmp_path),
        "--model",
        TINY_MODEL,
        "-o",
        str(tmp_path / "x.veil"),
        "--protector",
        "example_blur",
    )
    assert result.exit_code == 2
    assert result.output.strip() == (
        "Error: protector example_blur keeps no secret: there is no veil to craft, save or "
        "recover with; use it through `veilbench run`"
    )


def test_example_grey_recovers_its_photos(example, tmp_path):
    doc = run_in_process(
        tmp_path,
        protector="example_grey",
        models=TINY_MODEL,
        dataset=TINY_FACES,
        param={"level": 100},
    )
    assert doc.config["protector_config"] == {"alpha": 0.2, "level": 100.0}
    records = doc.results.protectors["example_grey"].surrogates[TINY_MODEL].measurements
    assert records["image_quality"].recovered.ssim > 0.95


def test_example_model_wires_its_input_spec(example):
    entry = example.registries["models"].get("example_thumbnail")
    model = entry.create()
    embeddings = model(torch.rand(2, 3, model.space.size, model.space.size) * 255)
    assert embeddings.shape == (2, 32)
    assert torch.allclose(embeddings.norm(dim=1), torch.ones(2))
    assert model.card.pretrained is False and entry.metadata["weights"] == []


def test_example_dataset_reads_a_real_face_folder(example, lfw_dev, monkeypatch):
    entry = example.registries["datasets"].get("example_faces")
    with pytest.raises(DataError, match=r"reads \$EXAMPLE_FACES: set it to a photo folder"):
        entry.create()
    monkeypatch.setenv("EXAMPLE_FACES", str(lfw_dev))
    dataset = entry.create()
    assert dataset.name == "example_faces" and dataset.alignment == "yunet"
    assert len(dataset.by_identity()) > 1000 and dataset.refs[0].path.suffix == ".jpg"

"""`veilbench rank1`: the clean-accuracy protocol, and a real model on real faces."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from veilbench.commands import build_cli
from veilbench.data.datasets import image_folder
from veilbench.evaluation.clean import clean_protocol


def test_protocol_split(lfw_dev):
    ds = image_folder(lfw_dev, alignment="center")
    gallery, queries = clean_protocol(ds, enrol=10, distractors=100, max_probes=3)
    probes = {r.identity for r in queries}
    assert len(probes) == 3
    enrolled = [r for r in gallery if r.identity in probes]
    assert len(enrolled) == 30 and len(gallery) == 130
    assert not {str(r.path) for r in gallery} & {str(r.path) for r in queries}


@pytest.mark.slow
def test_sface_clean_rank1_on_real_faces(lfw_dev):
    result = CliRunner().invoke(
        build_cli(),
        [
            "rank1",
            "--models",
            "sface",
            "--dataset",
            str(lfw_dev),
            "--alignment",
            "center",
            "--probes",
            "3",
            "--distractors",
            "100",
            "--device",
            "cpu",
        ],
    )
    assert result.exit_code == 0, result.output
    row = json.loads(result.output.strip().splitlines()[-1])
    assert row["model"] == "sface" and row["queries"] >= 30
    assert row["rank1"] >= 0.9

"""An example veilbench plugin: one of each kind (attack, protectors, model, dataset,
measurement, command).

This module only registers; the implementations live in :mod:`veilbench_example.parts` and are
imported (with torch) only when veilbench creates one, so ``veilbench --help`` stays fast.
"""

from __future__ import annotations

import click

from veilbench import hookimpl
from veilbench.lazy import factory


@hookimpl
def register_attacks(register):
    register(
        "posterize",
        factory("veilbench_example.parts:posterize"),
        parameter="bits per channel",
        sweep=[8, 5, 3, 2, 1],
        description="colour quantisation",
    )


@hookimpl
def register_protectors(register):
    register(
        "example_grey",
        factory("veilbench_example.parts:GreyVeil"),
        config="veilbench_example.parts:GreyConfig",
        description="flat grey veil (example)",
        demo=True,
    )
    register(
        "example_blur",
        factory("veilbench_example.parts:Blur"),
        config="veilbench_example.parts:BlurConfig",
        description="heavy Gaussian blur: no secret, cannot be undone (example)",
        demo=True,
    )


@hookimpl
def register_models(register):
    register(
        "example_thumbnail",
        factory("veilbench_example.parts:thumbnail_model"),
        card="veilbench_example.parts:thumbnail_card",
        weights=[],  # random weights: nothing to download, nothing to check
        description="RANDOM projection of a grey 24 px thumbnail: shows the wiring only",
    )


@hookimpl
def register_datasets(register):
    register(
        "example_faces",
        factory("veilbench_example.parts:example_faces"),
        description="your own <identity>/<photo> folder from $EXAMPLE_FACES, YuNet-aligned",
        licence="yours",
    )


@hookimpl
def register_measurements(register):
    from veilbench_example.measurement import BrightnessMeasurement

    register(BrightnessMeasurement.name, BrightnessMeasurement, **BrightnessMeasurement.info())


@hookimpl
def register_commands(cli):
    @cli.command("example-info")
    def example_info() -> None:
        """Say what the example plugin registers."""
        click.echo(
            "posterize, example_grey, example_blur, example_thumbnail, example_faces, "
            "example_brightness"
        )

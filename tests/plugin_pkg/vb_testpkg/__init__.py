"""One plugin of each kind, written from docs/plugins.md alone.

- model ``testpkg_random``: a random-weight backbone (plumbing only) wrapped in ``FaceModel``;
- protector ``testpkg_stripes``: one striped veil per person, blended with ``apply_veil``;
- protector ``testpkg_mosaic``: a per-photo mosaic that keeps no secret and cannot be undone;
- attack ``testpkg_invert``: inverts a share of the pixels' range;
- dataset ``testpkg_faces``: drawn faces written to a folder and read with ``image_folder``;
- command ``veilbench testpkg-hello``.
"""

from __future__ import annotations

import click

from veilbench import hookimpl
from veilbench.lazy import factory


@hookimpl
def register_models(register):
    register(
        "testpkg_random",
        factory("vb_testpkg.parts:random_model"),
        card="vb_testpkg.parts:random_card",
        weights=[],
        description="random weights, plumbing only",
    )


@hookimpl
def register_protectors(register):
    register(
        "testpkg_stripes",
        factory("vb_testpkg.parts:Stripes"),
        config="vb_testpkg.parts:StripesConfig",
        description="one striped veil per person",
    )
    register("testpkg_mosaic", factory("vb_testpkg.parts:Mosaic"), description="mosaic")


@hookimpl
def register_attacks(register):
    register(
        "testpkg_invert",
        factory("vb_testpkg.parts:invert"),
        parameter="share of the range inverted",
        sweep=[0.0, 0.5],
        description="partial inversion",
    )


@hookimpl
def register_datasets(register):
    register(
        "testpkg_faces",
        factory("vb_testpkg.parts:faces"),
        description="drawn faces in a folder",
        licence="generated",
    )


@hookimpl
def register_commands(cli):
    @cli.command("testpkg-hello")
    @click.argument("who", default="world")
    def hello(who: str) -> None:
        """Greet from the test plugin."""
        click.echo(f"hello {who} from testpkg")

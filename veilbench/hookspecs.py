"""The hooks a veilbench plugin can implement (the public plugin contract).

A plugin is a module (or package) exposed through the ``veilbench`` entry-point group that
implements some of these hooks with the :data:`hookimpl` marker::

    from veilbench import hookimpl

    @hookimpl
    def register_attacks(register):
        register("posterize", Posterize, description="reduce colour depth", params={"bits": 4})

Each ``register_*`` hook receives a ``register(name, factory, **metadata)`` callback. The factory
is stored, not called: listing never loads weights. Metadata is free-form JSON-serialisable data
shown by ``veilbench list ... --json``; the keys each kind expects are documented below. A name
registered twice (by any two plugins) is an error naming both.

An implementation may take fewer arguments than its spec, so specs can grow without breaking
plugins.
"""

from __future__ import annotations

from collections.abc import Callable

import click
import pluggy

PROJECT = "veilbench"

hookspec = pluggy.HookspecMarker(PROJECT)
#: Marker for plugin hook implementations.
hookimpl = pluggy.HookimplMarker(PROJECT)

#: ``register(name, factory, **metadata)``.
Register = Callable[..., None]


@hookspec
def register_models(register: Register) -> None:
    """Register face-recognition models.

    :param register: ``register(name, factory, **metadata)``. ``factory(space=FaceSpace, **kw)``
        returns a :class:`veilbench.models.base.FaceModel`. Metadata: ``card`` (a
        :class:`~veilbench.models.base.ModelCard`: input spec, embedding size, licence, weight
        files with sha256), ``weights`` (a list of :class:`~veilbench.weights.WeightFile`;
        empty for architectures that need a user checkpoint), ``description``.
    """


@hookspec
def register_protectors(register: Register) -> None:
    """Register protectors (veil crafting methods and baselines).

    :param register: ``register(name, factory, **metadata)``. ``factory(**params)`` returns an
        object following :class:`veilbench.protectors.Protector`. Metadata: ``description``,
        ``per_image`` (bool: one perturbation per image rather than one veil per person).
    """


@hookspec
def register_attacks(register: Register) -> None:
    """Register image attacks used in robustness sweeps.

    :param register: ``register(name, factory, **metadata)``. ``factory(strength)`` returns a
        callable mapping an ``N x 3 x H x W`` float tensor in [0, 255] to another one.
        Metadata: ``description``, ``parameter`` (name and unit of the strength),
        ``sweep`` (the default list of strengths).
    """


@hookspec
def register_datasets(register: Register) -> None:
    """Register datasets.

    :param register: ``register(name, factory, **metadata)``. ``factory(**options)`` returns a
        :class:`veilbench.data.datasets.FaceDataset`. Metadata: ``description``, ``licence``.
    """


@hookspec
def register_commands(cli: click.Group) -> None:
    """Add commands to the ``veilbench`` command line.

    :param cli: the root :class:`click.Group`; call ``cli.add_command(...)`` or decorate with
        ``@cli.command()``.
    """


HOOK_NAMES: tuple[str, ...] = (
    "register_models",
    "register_protectors",
    "register_attacks",
    "register_datasets",
    "register_commands",
)

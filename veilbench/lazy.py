"""Deferred imports: ``"module:attr"`` strings, resolved only when the object is needed.

Listing plugins, ``veilbench --help`` and ``veilbench list`` must not import torch, so built-in
factories, model cards and commands are named by ``"module:attr"`` and loaded on first use.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

import click


def load(target: str) -> Any:
    """The object named by ``"package.module:attr"`` (``attr`` may be dotted)."""
    module, sep, attr = target.partition(":")
    if not sep or not module or not attr:
        raise ValueError(f"expected 'module:attr', got {target!r}")
    obj: Any = importlib.import_module(module)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


def resolve(value: Any) -> Any:
    """``value`` itself, or the object it names when it is a ``"module:attr"`` string."""
    return load(value) if isinstance(value, str) else value


def factory(target: str) -> Callable[..., Any]:
    """A factory that imports ``target`` on its first call and calls it with the same arguments."""

    def create(*args: Any, **kwargs: Any) -> Any:
        return load(target)(*args, **kwargs)

    create.__name__ = target.rpartition(":")[2].rpartition(".")[2]
    create.__qualname__ = create.__name__
    create.lazy_target = target  # type: ignore[attr-defined]
    return create


class LazyCommand(click.Command):
    """A click command whose module is imported only when it runs or shows its own ``--help``.

    ``target`` names the real :class:`click.Command` (or a zero-argument function returning one);
    ``short_help`` is what the root ``--help`` lists, so listing imports nothing.
    """

    def __init__(self, name: str, target: str, short_help: str) -> None:
        super().__init__(name, short_help=short_help, help=short_help)
        self.target = target
        self._command: click.Command | None = None

    def load(self) -> click.Command:
        if self._command is None:
            obj = load(self.target)
            self._command = obj if isinstance(obj, click.Command) else obj()
        return self._command

    def make_context(
        self,
        info_name: str | None,
        args: list[str],
        parent: click.Context | None = None,
        **extra: Any,
    ) -> click.Context:
        # The context belongs to the real command, so click invokes that one.
        return self.load().make_context(info_name, args, parent=parent, **extra)

    def get_params(self, ctx: click.Context) -> list[click.Parameter]:
        return self.load().get_params(ctx)

    def to_info_dict(self, ctx: click.Context) -> dict[str, Any]:
        return self.load().to_info_dict(ctx)

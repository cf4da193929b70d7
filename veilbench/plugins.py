"""Plugin loading: entry points of the ``veilbench`` group, built-ins included.

Built-in models, protectors, attacks and datasets are plugins too (``plugins/veilbench_builtins``),
loaded by the same path as third-party packages. Loading happens once, lazily.

Environment:
- ``VEILBENCH_LOAD_PLUGINS=a,b``: load only these third-party plugins (entry-point or package
  names); empty loads none. Built-ins always load unless disabled. Keeps tests hermetic.
- ``VEILBENCH_DISABLE_PLUGINS=a,b``: never load these (built-ins included).
- ``VEILBENCH_STRICT_PLUGINS=1``: a plugin that fails to load is an error instead of a warning.
"""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from importlib.metadata import EntryPoint, entry_points
from typing import Any

import pluggy

from veilbench import hookspecs
from veilbench.errors import PluginError, RegistryError
from veilbench.registry import KINDS, Registry

BUILTIN_DIST = "veilbench"


@dataclass
class PluginInfo:
    """One plugin as ``veilbench plugins`` shows it."""

    name: str
    package: str
    version: str
    builtin: bool
    status: str = "loaded"  # loaded | failed | disabled | not selected
    error: str = ""
    hooks: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _env_list(name: str) -> list[str] | None:
    value = os.environ.get(name)
    if value is None:
        return None
    return [v.strip() for v in value.split(",") if v.strip()]


def _strict() -> bool:
    return os.environ.get("VEILBENCH_STRICT_PLUGINS", "") not in ("", "0", "false", "no")


class Plugins:
    """The loaded plugin manager plus the registries its hooks filled."""

    def __init__(
        self, entry_points_: list[EntryPoint] | None = None, modules: dict[str, Any] | None = None
    ):
        """Load ``entry_points_`` (default: the installed ones), then in-process ``modules``."""
        self.pm = pluggy.PluginManager(hookspecs.PROJECT)
        self.pm.add_hookspecs(hookspecs)
        self.info: dict[str, PluginInfo] = {}
        self.registries: dict[str, Registry] = {kind: Registry(kind) for kind in KINDS}
        eps = entry_points_ if entry_points_ is not None else _veilbench_entry_points()
        for ep in eps:
            self._load(ep)
        for name, module in (modules or {}).items():
            self.info[name] = PluginInfo(name, "(in-process)", "-", False)
            self.pm.register(module, name=name)
            self.pm.check_pending()
        for kind in KINDS:
            self._collect(kind)

    # Loading ---------------------------------------------------------------------------------
    def _load(self, ep: EntryPoint) -> None:
        dist = getattr(ep, "dist", None)
        package = dist.name if dist is not None else "?"
        version = dist.version if dist is not None else "?"
        builtin = package == BUILTIN_DIST
        info = PluginInfo(ep.name, package, version, builtin)
        self.info[ep.name] = info
        disabled = _env_list("VEILBENCH_DISABLE_PLUGINS") or []
        selected = _env_list("VEILBENCH_LOAD_PLUGINS")
        if ep.name in disabled or package in disabled:
            info.status = "disabled"
            return
        if not builtin and selected is not None and not {ep.name, package} & set(selected):
            info.status = "not selected"
            return
        try:
            module = ep.load()
            self.pm.register(module, name=ep.name)
            try:
                self.pm.check_pending()  # a misspelt hook name fails here, not silently
            except Exception:
                self.pm.unregister(name=ep.name)
                raise
        except Exception as exc:  # a broken plugin must not take the CLI down
            self._fail(info, exc)
            return
        info.hooks = sorted(
            {c.name for c in self.pm.get_hookcallers(self.pm.get_plugin(ep.name)) or []}
        )

    def _fail(self, info: PluginInfo, exc: BaseException) -> None:
        info.status = "failed"
        info.error = f"{type(exc).__name__}: {exc}"
        message = (
            f"plugin {info.name!r} (package {info.package} {info.version}) failed: {info.error}"
        )
        if _strict():
            raise PluginError(message + " (VEILBENCH_STRICT_PLUGINS is set)") from exc
        print(f"veilbench: warning: {message}; skipped", file=sys.stderr)
        if os.environ.get("VEILBENCH_DEBUG"):
            traceback.print_exception(exc, file=sys.stderr)

    # Registration ----------------------------------------------------------------------------
    def _collect(self, kind: str) -> None:
        registry = self.registries[kind]
        hook = getattr(self.pm.hook, f"register_{kind}")
        for impl in hook.get_hookimpls():  # registration order = load order
            register = partial(_register_into, registry, impl.plugin_name)
            self._call(impl, register=register)

    def add_commands(self, cli: Any) -> None:
        """Call every ``register_commands`` implementation with the root click group."""
        for impl in self.pm.hook.register_commands.get_hookimpls():
            self._call(impl, cli=cli)

    def _call(self, impl: pluggy.HookImpl, **kwargs: Any) -> None:
        args = {k: v for k, v in kwargs.items() if k in impl.argnames}
        info = self.info.get(impl.plugin_name) or PluginInfo(impl.plugin_name, "?", "?", False)
        try:
            impl.function(**args)
        except RegistryError:
            raise  # a name clash is the user's to resolve, never silently dropped
        except Exception as exc:
            if info.builtin:
                raise
            self._fail(info, exc)

    def plugin_versions(self) -> list[dict[str, Any]]:
        return [i.to_dict() for i in self.info.values()]


def _register_into(
    registry: Registry, plugin: str, name: str, factory: Callable[..., Any], **metadata: Any
) -> None:
    registry.register(name, factory, plugin, **metadata)


def _veilbench_entry_points() -> list[EntryPoint]:
    eps = list(entry_points(group=hookspecs.PROJECT))
    # Built-ins first, so a third-party name clash is reported against the built-in.
    return sorted(eps, key=lambda ep: (getattr(ep.dist, "name", "") != BUILTIN_DIST, ep.name))


_PLUGINS: Plugins | None = None


def get_plugins() -> Plugins:
    """The process-wide plugins, loaded on first use."""
    global _PLUGINS
    if _PLUGINS is None:
        _PLUGINS = Plugins()
    return _PLUGINS


def reset_plugins(plugins: Plugins | None = None) -> None:
    """Forget loaded plugins, or install ``plugins`` (tests change the environment and reload)."""
    global _PLUGINS
    _PLUGINS = plugins


def registry(kind: str) -> Registry:
    return get_plugins().registries[kind]

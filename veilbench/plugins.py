"""Plugin loading: entry points of the ``veilbench`` group, built-ins included.

Built-in models, protectors, attacks and datasets are plugins too
(``plugins/veilbench_builtins``), loaded by the same path as third-party packages. Loading
happens once, lazily, and imports no model code (factories are stored, not called).

One bad plugin never takes the command line down: a plugin that fails to import, implements a
misspelt hook, raises inside a hook, or registers a name another plugin already holds is skipped
as a whole (none of its registrations are kept) and reported by name on stderr and in
``veilbench plugins``; the others load. A function named like a hook but not marked with
``@hookimpl`` is reported as a warning.

Environment:
- ``VEILBENCH_LOAD_PLUGINS=a,b``: load only these third-party plugins (entry-point or package
  names); empty loads none. Built-ins always load unless disabled. Keeps tests hermetic.
- ``VEILBENCH_DISABLE_PLUGINS=a,b``: never load these (built-ins included).
- ``VEILBENCH_STRICT_PLUGINS=1``: every such failure or warning is an error instead.
"""

from __future__ import annotations

import difflib
import os
import sys
import traceback
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint, entry_points
from typing import Any

import pluggy

from veilbench import hookspecs
from veilbench.errors import PluginError, RegistryError
from veilbench.models.card import in_all
from veilbench.registry import KINDS, Entry, Registry

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
    warnings: list[str] = field(default_factory=list)
    #: The failure's traceback, shown by ``veilbench --verbose``.
    traceback: str = ""

    def to_dict(self) -> dict[str, Any]:
        data = dict(self.__dict__)
        data.pop("traceback")
        return data


def _env_list(name: str) -> list[str] | None:
    value = os.environ.get(name)
    if value is None:
        return None
    return [v.strip() for v in value.split(",") if v.strip()]


def _strict() -> bool:
    return os.environ.get("VEILBENCH_STRICT_PLUGINS", "") not in ("", "0", "false", "no")


def _did_you_mean(name: str, options: list[str] | tuple[str, ...]) -> str:
    close = difflib.get_close_matches(name, list(options), n=1, cutoff=0.75)
    return f"; did you mean {close[0]}?" if close else ""


def check_hooks(module: Any) -> tuple[list[str], list[str]]:
    """(errors, warnings) about ``module``'s hook functions, before pluggy sees them.

    A marked function that is not a hook is an error (pluggy would reject the whole plugin
    anyway; this says which hook was meant). A hook-named function without ``@hookimpl`` would
    be silently ignored, so it is a warning.
    """
    errors, warnings = [], []
    for attr, obj in sorted(vars(module).items()) if hasattr(module, "__dict__") else []:
        if not callable(obj) or isinstance(obj, (type, pluggy.HookimplMarker)):
            continue
        marked = hasattr(obj, f"{hookspecs.PROJECT}_impl")
        if marked and attr not in hookspecs.HOOK_NAMES:
            errors.append(
                f"{attr} is not a veilbench hook{_did_you_mean(attr, hookspecs.HOOK_NAMES)} "
                f"(hooks: {', '.join(hookspecs.HOOK_NAMES)})"
            )
        elif not marked and attr in hookspecs.HOOK_NAMES:
            warnings.append(
                f"{attr} is not marked with @hookimpl (from veilbench import hookimpl), "
                "so veilbench ignores it"
            )
        elif not marked and attr.startswith("register_"):
            hint = _did_you_mean(attr, hookspecs.HOOK_NAMES)
            if hint:
                warnings.append(
                    f"{attr} looks like a hook but is neither marked with @hookimpl nor a hook "
                    f"name{hint}"
                )
    return errors, warnings


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
        self.registries["models"].in_all = in_all  # `--models all`: real models only
        eps = entry_points_ if entry_points_ is not None else installed_entry_points()
        for ep in eps:
            self._load(ep)
        for name, module in (modules or {}).items():
            info = PluginInfo(name, "(in-process)", "-", False)
            self.info[name] = info
            self._add(info, module)
        for info in list(self.info.values()):  # load order: built-ins first
            if info.status == "loaded":
                self._collect(info)

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
        except Exception as exc:  # a broken plugin must not take the CLI down
            self._fail(info, exc)
            return
        self._add(info, module)

    def _add(self, info: PluginInfo, module: Any) -> None:
        """Check ``module``'s hooks, then register it with pluggy (or fail the plugin)."""
        errors, warnings = check_hooks(module)
        for warning in warnings:
            self._warn(info, warning)
        if errors:
            self._fail(info, PluginError("; ".join(errors)))
            return
        try:
            self.pm.register(module, name=info.name)
            try:
                self.pm.check_pending()
            except Exception:
                self.pm.unregister(name=info.name)
                raise
        except Exception as exc:
            self._fail(info, exc)
            return
        info.hooks = sorted(
            {c.name for c in self.pm.get_hookcallers(self.pm.get_plugin(info.name)) or []}
        )

    def _warn(self, info: PluginInfo, warning: str) -> None:
        message = f"plugin {info.name!r} (package {info.package} {info.version}): {warning}"
        if _strict():
            raise PluginError(message + " (VEILBENCH_STRICT_PLUGINS is set)")
        info.warnings.append(warning)
        print(f"veilbench: warning: {message}", file=sys.stderr)

    def _fail(self, info: PluginInfo, exc: BaseException) -> None:
        info.status = "failed"
        info.error = f"{type(exc).__name__}: {exc}"
        info.traceback = "".join(traceback.format_exception(exc))
        if self.pm.get_plugin(info.name) is not None:
            self.pm.unregister(name=info.name)  # its other hooks must not run either
        for registry in self.registries.values():  # nor may half of it stay registered
            registry.drop_plugin(info.name)
        message = (
            f"plugin {info.name!r} (package {info.package} {info.version}) failed: {info.error}"
        )
        if _strict():
            raise PluginError(message + " (VEILBENCH_STRICT_PLUGINS is set)") from exc
        print(f"veilbench: warning: {message}; skipped (--verbose shows why)", file=sys.stderr)
        if os.environ.get("VEILBENCH_DEBUG"):
            print(info.traceback, file=sys.stderr, end="")

    # Registration ----------------------------------------------------------------------------
    def _collect(self, info: PluginInfo) -> None:
        """Every registration of one plugin, kept only if all of them are valid and new."""
        staged: dict[str, list[Entry]] = {kind: [] for kind in KINDS}
        for kind in KINDS:

            def register(name: str, factory: Any, _kind: str = kind, **metadata: Any) -> None:
                entry = Entry(name, factory, info.name, _kind, dict(metadata))
                self.registries[_kind].check_new(entry, staged[_kind])
                staged[_kind].append(entry)

            for impl in self._impls(f"register_{kind}", info.name):
                if not self._call(info, impl, register=register):
                    return
        for kind, entries in staged.items():
            for entry in entries:
                self.registries[kind].add(entry)

    def _impls(self, hook: str, plugin: str) -> list[pluggy.HookImpl]:
        caller = getattr(self.pm.hook, hook)
        return [impl for impl in caller.get_hookimpls() if impl.plugin_name == plugin]

    def add_commands(self, cli: Any) -> None:
        """Call every ``register_commands`` implementation with the root click group.

        A plugin may add new commands only: one that replaces an existing command is skipped
        and the command it replaced is put back.
        """
        for info in list(self.info.values()):
            for impl in self._impls("register_commands", info.name):
                before = dict(cli.commands)
                ok = self._call(info, impl, cli=cli)
                clash = sorted(n for n, c in before.items() if cli.commands.get(n) is not c)
                if ok and clash:
                    self._fail(
                        info,
                        RegistryError(
                            f"command {clash[0]!r} already exists; a plugin cannot replace it"
                        ),
                    )
                if not ok or clash:
                    cli.commands.clear()
                    cli.commands.update(before)

    def _call(self, info: PluginInfo, impl: pluggy.HookImpl, **kwargs: Any) -> bool:
        """Run one hook implementation; False (and the plugin failed) when it raises."""
        args = {k: v for k, v in kwargs.items() if k in impl.argnames}
        try:
            impl.function(**args)
        except Exception as exc:
            if info.builtin and not isinstance(exc, RegistryError):
                raise
            self._fail(info, exc)
            return False
        return True

    def failures(self) -> list[PluginInfo]:
        """Plugins that were skipped because they failed."""
        return [i for i in self.info.values() if i.status == "failed"]

    def plugin_versions(self) -> list[dict[str, Any]]:
        return [i.to_dict() for i in self.info.values()]


def installed_entry_points() -> list[EntryPoint]:
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


def loaded_plugins() -> Plugins | None:
    """The process-wide plugins if already loaded (loads nothing)."""
    return _PLUGINS


def reset_plugins(plugins: Plugins | None = None) -> None:
    """Forget loaded plugins, or install ``plugins`` (tests change the environment and reload)."""
    global _PLUGINS
    _PLUGINS = plugins


def registry(kind: str) -> Registry:
    return get_plugins().registries[kind]

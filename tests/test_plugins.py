"""Plugin loading: built-ins through entry points, broken and misspelt plugins, selection."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from importlib.metadata import EntryPoint

import pytest

from veilbench.errors import PluginError
from veilbench.plugins import Plugins, installed_entry_points


@pytest.fixture
def plugin_dir(tmp_path, monkeypatch):
    """A folder on sys.path where tests write throwaway plugin modules."""
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


def write_module(folder, name, source):
    (folder / f"{name}.py").write_text(textwrap.dedent(source))
    sys.modules.pop(name, None)
    return EntryPoint(name=name, value=name, group="veilbench")


def test_builtins_load_through_entry_points():
    plugins = Plugins()
    assert {"sface", "facenet", "dlib_resnet", "iresnet50"} <= set(
        plugins.registries["models"].names()
    )
    assert {"veil", "vuap", "avih", "none"} <= set(plugins.registries["protectors"].names())
    assert {"gaussian", "salt_pepper", "median", "jpeg", "resize", "blur"} <= set(
        plugins.registries["attacks"].names()
    )
    builtin = [i for i in plugins.info.values() if i.builtin]
    assert builtin and all(i.status == "loaded" for i in builtin)


def test_broken_plugin_is_named_and_the_rest_load(plugin_dir, capsys):
    ep = write_module(plugin_dir, "vb_broken", "raise ImportError('boom from plugin')\n")
    plugins = Plugins(installed_entry_points() + [ep])
    err = capsys.readouterr().err
    assert "vb_broken" in err and "boom from plugin" in err
    assert plugins.info["vb_broken"].status == "failed"
    assert "sface" in plugins.registries["models"]


def test_strict_mode_turns_a_broken_plugin_into_an_error(plugin_dir, monkeypatch):
    ep = write_module(plugin_dir, "vb_broken2", "raise RuntimeError('nope')\n")
    monkeypatch.setenv("VEILBENCH_STRICT_PLUGINS", "1")
    with pytest.raises(PluginError, match="vb_broken2"):
        Plugins([ep])


def test_misspelt_hook_fails_loudly_with_did_you_mean(plugin_dir, capsys):
    ep = write_module(
        plugin_dir,
        "vb_typo",
        """
        from veilbench import hookimpl

        @hookimpl
        def register_atacks(register):
            pass
    """,
    )
    plugins = Plugins([ep])
    assert plugins.info["vb_typo"].status == "failed"
    err = capsys.readouterr().err
    assert (
        "plugin 'vb_typo' (package ? ?) failed: PluginError: register_atacks is not a veilbench "
        "hook; did you mean register_attacks?" in err
    )


def test_unmarked_hook_is_a_warning_and_strict_makes_it_an_error(plugin_dir, capsys, monkeypatch):
    source = """
        def register_attacks(register):
            register("never_registered", lambda s: None)
    """
    ep = write_module(plugin_dir, "vb_unmarked", source)
    plugins = Plugins([ep])
    err = capsys.readouterr().err
    assert (
        "veilbench: warning: plugin 'vb_unmarked' (package ? ?): register_attacks is not marked "
        "with @hookimpl (from veilbench import hookimpl), so veilbench ignores it" in err
    )
    assert (
        plugins.info["vb_unmarked"].warnings
        and "never_registered" not in plugins.registries["attacks"]
    )
    monkeypatch.setenv("VEILBENCH_STRICT_PLUGINS", "1")
    with pytest.raises(PluginError, match="register_attacks is not marked with @hookimpl"):
        Plugins([write_module(plugin_dir, "vb_unmarked", source)])


def test_unmarked_misspelt_hook_gets_did_you_mean(plugin_dir, capsys):
    ep = write_module(plugin_dir, "vb_unmarked_typo", "def register_dataset(register):\n    pass\n")
    Plugins([ep])
    assert "did you mean register_datasets?" in capsys.readouterr().err


def test_a_plugin_raising_inside_its_hook_is_reported(plugin_dir, capsys):
    ep = write_module(
        plugin_dir,
        "vb_raises",
        """
        from veilbench import hookimpl

        @hookimpl
        def register_attacks(register):
            raise ValueError('hook exploded')
    """,
    )
    plugins = Plugins(installed_entry_points() + [ep])
    assert "hook exploded" in capsys.readouterr().err
    assert "gaussian" in plugins.registries["attacks"]


DUPLICATE = """
    from veilbench import hookimpl

    @hookimpl
    def register_attacks(register):
        register("fresh_attack", lambda s: None)
        register("gaussian", lambda s: None)
"""


def test_duplicate_name_skips_the_later_plugin_whole(plugin_dir, capsys):
    ep = write_module(plugin_dir, "vb_dup", DUPLICATE)
    plugins = Plugins(installed_entry_points() + [ep])
    err = capsys.readouterr().err
    assert (
        "plugin 'vb_dup' (package ? ?) failed: RegistryError: attack 'gaussian' is registered "
        "twice: by plugin 'builtin-attacks' and by plugin 'vb_dup'; rename it, or disable one "
        "with VEILBENCH_DISABLE_PLUGINS; skipped" in err
    )
    assert plugins.info["vb_dup"].status == "failed"
    assert "fresh_attack" not in plugins.registries["attacks"]  # nothing of it is kept
    assert plugins.registries["attacks"].get("gaussian").plugin == "builtin-attacks"


def test_duplicate_name_is_an_error_in_strict_mode(plugin_dir, monkeypatch):
    ep = write_module(plugin_dir, "vb_dup_strict", DUPLICATE)
    monkeypatch.setenv("VEILBENCH_STRICT_PLUGINS", "1")
    with pytest.raises(PluginError, match="builtin-attacks.*vb_dup_strict"):
        Plugins(installed_entry_points() + [ep])


def test_a_command_replacing_a_core_command_is_skipped(plugin_dir, capsys):
    import click

    ep = write_module(
        plugin_dir,
        "vb_cmd_clash",
        """
        import click
        from veilbench import hookimpl

        @hookimpl
        def register_commands(cli):
            cli.add_command(click.Command("list", callback=lambda: None))

        @hookimpl
        def register_attacks(register):
            register("clash_attack", lambda s: None)
    """,
    )
    group = click.Group(commands=[click.Command("list")])
    original = group.commands["list"]
    plugins = Plugins([ep])
    assert "clash_attack" in plugins.registries["attacks"]
    plugins.add_commands(group)
    assert group.commands["list"] is original
    assert "command 'list' already exists; a plugin cannot replace it" in capsys.readouterr().err
    assert "clash_attack" not in plugins.registries["attacks"]  # the plugin goes as a whole


def test_load_and_disable_lists(plugin_dir, monkeypatch):
    ep = write_module(
        plugin_dir,
        "vb_extra",
        """
        from veilbench import hookimpl

        @hookimpl
        def register_attacks(register):
            register("extra_attack", lambda s: None)
    """,
    )
    eps = installed_entry_points() + [ep]
    monkeypatch.setenv("VEILBENCH_LOAD_PLUGINS", "")
    plugins = Plugins(eps)
    assert "extra_attack" not in plugins.registries["attacks"]
    assert "gaussian" in plugins.registries["attacks"]  # built-ins always load
    monkeypatch.setenv("VEILBENCH_LOAD_PLUGINS", "vb_extra")
    assert "extra_attack" in Plugins(eps).registries["attacks"]
    monkeypatch.delenv("VEILBENCH_LOAD_PLUGINS")
    monkeypatch.setenv("VEILBENCH_DISABLE_PLUGINS", "builtin-attacks")
    plugins = Plugins(eps)
    assert "gaussian" not in plugins.registries["attacks"]
    assert plugins.info["builtin-attacks"].status == "disabled"


def run_cli(plugin_dir, module: str, *args: str) -> subprocess.CompletedProcess:
    """The real CLI in a fresh process, with the installed plugins plus ``module``."""
    code = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(plugin_dir)!r})
        from importlib.metadata import EntryPoint
        import veilbench.plugins as P
        extra = EntryPoint({module!r}, {module!r}, 'veilbench')
        P.reset_plugins(P.Plugins(P.installed_entry_points() + [extra]))
        from veilbench.commands import main
        sys.argv = ['veilbench', *{list(args)!r}]
        main()
    """)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)


def test_broken_plugin_does_not_take_the_cli_down(plugin_dir):
    """End to end: an installed-like broken plugin, the real CLI process still lists models."""
    (plugin_dir / "vb_cli_broken.py").write_text("raise ImportError('cli boom')\n")
    proc = run_cli(plugin_dir, "vb_cli_broken", "list", "models")
    assert proc.returncode == 0, proc.stderr
    assert "vb_cli_broken" in proc.stderr and "cli boom" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert "sface" in proc.stdout
    verbose = run_cli(plugin_dir, "vb_cli_broken", "--verbose", "plugins")
    assert "plugin 'vb_cli_broken' failed:\nTraceback" in verbose.stderr
    assert "raise ImportError('cli boom')" in verbose.stderr


def test_duplicate_name_leaves_help_and_plugins_usable(plugin_dir):
    write_module(plugin_dir, "vb_cli_dup", DUPLICATE)
    for args in (["--help"], ["plugins"]):
        proc = run_cli(plugin_dir, "vb_cli_dup", *args)
        assert proc.returncode == 0, proc.stderr
        assert "attack 'gaussian' is registered twice" in proc.stderr
    assert "vb_cli_dup" in proc.stdout and "failed: RegistryError" in proc.stdout

"""Plugin loading: built-ins through entry points, broken and misspelt plugins, selection."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from importlib.metadata import EntryPoint

import pytest

from veilbench.errors import PluginError, RegistryError
from veilbench.plugins import Plugins, _veilbench_entry_points


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
    plugins = Plugins(_veilbench_entry_points() + [ep])
    err = capsys.readouterr().err
    assert "vb_broken" in err and "boom from plugin" in err
    assert plugins.info["vb_broken"].status == "failed"
    assert "sface" in plugins.registries["models"]


def test_strict_mode_turns_a_broken_plugin_into_an_error(plugin_dir, monkeypatch):
    ep = write_module(plugin_dir, "vb_broken2", "raise RuntimeError('nope')\n")
    monkeypatch.setenv("VEILBENCH_STRICT_PLUGINS", "1")
    with pytest.raises(PluginError, match="vb_broken2"):
        Plugins([ep])


def test_misspelt_hook_fails_loudly(plugin_dir, capsys):
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
    assert "register_atacks" in capsys.readouterr().err


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
    plugins = Plugins(_veilbench_entry_points() + [ep])
    assert "hook exploded" in capsys.readouterr().err
    assert "gaussian" in plugins.registries["attacks"]


def test_duplicate_registration_names_both_plugins(plugin_dir):
    ep = write_module(
        plugin_dir,
        "vb_dup",
        """
        from veilbench import hookimpl

        @hookimpl
        def register_attacks(register):
            register("gaussian", lambda s: None)
    """,
    )
    with pytest.raises(RegistryError, match="builtin-attacks.*vb_dup"):
        Plugins(_veilbench_entry_points() + [ep])


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
    eps = _veilbench_entry_points() + [ep]
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


def test_broken_plugin_does_not_take_the_cli_down(plugin_dir):
    """End to end: an installed-like broken plugin, the real CLI process still lists models."""
    (plugin_dir / "vb_cli_broken.py").write_text("raise ImportError('cli boom')\n")
    code = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(plugin_dir)!r})
        from importlib.metadata import EntryPoint
        import veilbench.plugins as P
        broken = EntryPoint('vb_cli_broken', 'vb_cli_broken', 'veilbench')
        eps = P._veilbench_entry_points() + [broken]
        P.reset_plugins(P.Plugins(eps))
        from veilbench.cli import main
        sys.argv = ['veilbench', 'list', 'models']
        main()
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "vb_cli_broken" in proc.stderr and "cli boom" in proc.stderr
    assert "sface" in proc.stdout

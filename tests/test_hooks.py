"""One test per hook: an in-process plugin implements it and veilbench uses the result."""

from __future__ import annotations

import types

import click
import torch
from click.testing import CliRunner

from veilbench import hookimpl
from veilbench.plugins import Plugins


def plugin(**hooks) -> types.ModuleType:
    module = types.ModuleType("test_plugin")
    for name, fn in hooks.items():
        setattr(module, name, hookimpl(fn))
    return module


def test_register_models_factory_is_called_only_on_create():
    calls = []

    def register_models(register):
        register("counted", lambda **kw: calls.append(kw) or "model", weights=[])

    reg = Plugins(modules={"p": plugin(register_models=register_models)}).registries["models"]
    assert calls == [] and reg.get("counted").plugin == "p"
    assert reg.get("counted").create(space=None) == "model" and calls == [{"space": None}]


def test_register_protectors_object_is_used():
    class Half:
        name, per_image, config = "half", False, {}

        def apply(self, veil, images):
            return images / 2

    def register_protectors(register):
        register("half", Half, per_image=False)

    reg = Plugins(modules={"p": plugin(register_protectors=register_protectors)})
    protector = reg.registries["protectors"].get("half").create()
    assert torch.equal(
        protector.apply(None, torch.full((1, 3, 2, 2), 8.0)), torch.full((1, 3, 2, 2), 4.0)
    )


def test_register_attacks_with_sweep_metadata():
    def register_attacks(register):
        register("negate", lambda s: lambda x: 255 - x, sweep=[1], parameter="none")

    entry = (
        Plugins(modules={"p": plugin(register_attacks=register_attacks)})
        .registries["attacks"]
        .get("negate")
    )
    assert entry.metadata["sweep"] == [1]
    assert entry.create(1)(torch.zeros(1)).item() == 255


def test_register_datasets_entries_create_datasets(tmp_path):
    for ident in ("a", "b"):
        (tmp_path / ident).mkdir()
        (tmp_path / ident / "1.png").write_bytes(b"")

    def register_datasets(register):
        from veilbench.data.datasets import image_folder

        register("mine", lambda **kw: image_folder(tmp_path, name="mine"))

    plugins = Plugins(modules={"p": plugin(register_datasets=register_datasets)})
    ds = plugins.registries["datasets"].get("mine").create()
    assert sorted(ds.by_identity()) == ["a", "b"] and ds.name == "mine"


def test_register_commands_adds_a_cli_command():
    def register_commands(cli):
        @cli.command("hello-plugin")
        def hello():
            click.echo("hello from a plugin command")

    group = click.Group("veilbench")
    Plugins(modules={"cmd": plugin(register_commands=register_commands)}).add_commands(group)
    result = CliRunner().invoke(group, ["hello-plugin"])
    assert result.exit_code == 0 and "hello from a plugin command" in result.output

"""``veilbench list`` and ``veilbench plugins``: what is registered and installed."""

from __future__ import annotations

from typing import Any

import click

from veilbench.commands.options import echo_json
from veilbench.plugins import get_plugins
from veilbench.registry import KINDS


@click.command("list")
@click.argument("kind", type=click.Choice(KINDS))
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def list_command(kind: str, as_json: bool) -> None:
    """List registered entries of one kind (models, protectors, measurements, ...)."""
    entries = list(get_plugins().registries[kind])
    if as_json:
        echo_json([_describe(e) for e in entries])
        return
    for e in entries:
        extra = f"  ({_model_state(e)})" if kind == "models" else ""
        click.echo(f"{e.name:<22} {e.metadata.get('description', '')}  [{e.plugin}]{extra}")


def _model_state(entry) -> str:
    """A model's measured LFW accuracy and whether its weights are on disk, in words."""
    from veilbench.models.packs import PACKS, find_pack
    from veilbench.weights import find_local

    try:
        card = model_card(entry) if entry.metadata.get("card") is not None else None
    except Exception:  # a card must not break listing (`--json` shows the error)
        card = None
    if entry.metadata.get("needs"):
        lfw = "LFW: that of your checkpoint"
    elif card is None or not card.real:
        lfw = "demo: not a face recogniser" if card is not None else "no card"
    elif card.lfw:
        lfw = f"LFW {100 * card.lfw['accuracy']:.2f}% ({card.lfw.get('alignment', 'yunet')})"
    else:
        lfw = "LFW not measured"
    weights = entry.metadata.get("weights", [])
    if entry.metadata.get("pack"):
        present = "weights on disk" if find_pack(PACKS[entry.metadata["pack"]]) else "no weights"
    elif entry.metadata.get("needs"):
        present = "your checkpoint"
    elif weights:
        on_disk = all(find_local(w) is not None for w in weights)
        present = "weights on disk" if on_disk else "weights not on disk"
    else:
        present = "no weight files"
    return f"{lfw}; {present}"


def _describe(entry) -> dict[str, Any]:
    data = entry.to_dict()
    if entry.kind == "models":
        from veilbench.weights import status

        card = data.pop("card", None)
        if card is not None:  # cheap: builds a card, never loads weights
            try:
                data["card"] = model_card(entry).to_dict()
            except Exception as exc:  # a card must not break listing
                data["card_error"] = f"{type(exc).__name__}: {exc}"
        data["available"] = all(status(w).available for w in entry.metadata.get("weights", []))
        data["state"] = _model_state(entry)
    if entry.kind == "protectors":
        from dataclasses import asdict

        from veilbench.lazy import resolve
        from veilbench.protectors.contract import traits

        target = resolve(getattr(entry.factory, "lazy_target", entry.factory))
        if isinstance(target, type):  # a protector class declares its traits; a function cannot
            data["traits"] = asdict(traits(target))
    return data


def model_card(entry) -> Any:
    """The :class:`~veilbench.models.base.ModelCard` a model registration declares."""
    from veilbench.lazy import resolve

    card = resolve(entry.metadata["card"])
    return card if hasattr(card, "to_dict") else card()


@click.command("plugins")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def plugins_command(as_json: bool) -> None:
    """List installed plugins with their package versions and status."""
    infos = get_plugins().plugin_versions()
    if as_json:
        echo_json(infos)
        return
    for i in infos:
        line = f"{i['name']:<22} {i['package']} {i['version']:<10} {i['status']}"
        click.echo(line + (f": {i['error']}" if i["error"] else ""))
        for warning in i["warnings"]:
            click.echo(f"{'':<22} warning: {warning}")

"""``veilbench weights``: pretrained weight files."""

from __future__ import annotations

import click

from veilbench.commands.options import echo_json


@click.group("weights")
def weights_group() -> None:
    """Pretrained weight files: where they are, and fetching them."""


@weights_group.command("list")
@click.option("--json", "as_json", is_flag=True)
def weights_list(as_json: bool) -> None:
    """List known weight files, their sha256 and whether they are on disk."""
    from veilbench.weights import KNOWN_WEIGHTS, status

    rows = []
    for w in KNOWN_WEIGHTS.values():
        s = status(w)
        rows.append(
            {
                "name": w.name,
                "sha256": w.sha256,
                "size": w.size,
                "licence": w.licence,
                "path": str(s.path) if s.path else None,
                "status": s.reason,
                "sources": w.describe_sources(),
            }
        )
    if as_json:
        echo_json(rows)
        return
    for r in rows:
        click.echo(f"{r['name']:<44} {r['status']}")


@weights_group.command("fetch")
@click.argument("names", nargs=-1, required=True)
def weights_fetch(names: tuple[str, ...]) -> None:
    """Fetch weight files by name (or `all`) into the cache, checking sha256."""
    from veilbench.errors import ConfigError
    from veilbench.weights import KNOWN_WEIGHTS, resolve

    wanted = list(KNOWN_WEIGHTS) if "all" in names else list(names)
    for name in wanted:
        if name not in KNOWN_WEIGHTS:
            raise ConfigError(f"unknown weight file {name!r}; known: {', '.join(KNOWN_WEIGHTS)}")
        click.echo(f"{name}: {resolve(KNOWN_WEIGHTS[name])}")

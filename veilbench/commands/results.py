"""``veilbench results``: the results file's JSON Schema, and checking files against it."""

from __future__ import annotations

import json

import click


@click.group("results")
def results_group() -> None:
    """Results files: their JSON Schema, and checking files against it."""


@results_group.command("schema")
def schema_command() -> None:
    """Print the JSON Schema of results.json (every registered measurement's record included)."""
    from veilbench.results import json_schema

    click.echo(json.dumps(json_schema(), indent=2))


@results_group.command("validate")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
def validate_command(files: tuple[str, ...]) -> None:
    """Check results files against the current schema (older ones as they are upgraded)."""
    import jsonschema

    from veilbench.errors import ConfigError
    from veilbench.results import SCHEMA_VERSION, read_json, validate

    for name in files:
        doc = read_json(name)
        if doc["schema_version"] != SCHEMA_VERSION:
            from veilbench.results import read_results

            doc = read_results(name).to_dict()  # checks the upgraded document
        try:
            validate(doc)
        except jsonschema.ValidationError as exc:
            where = "/".join(str(p) for p in exc.absolute_path) or "(top level)"
            raise ConfigError(
                f"{name}: not a valid results file at {where}: {exc.message}"
            ) from None
        click.echo(f"{name}: valid results (schema_version {SCHEMA_VERSION})")

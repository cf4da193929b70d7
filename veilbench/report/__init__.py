"""The HTML report: rendered from a results document alone (so old runs re-render)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jinja2

from veilbench.results import write_text_atomic

TEMPLATES = Path(__file__).with_name("templates")


def environment(extra_dirs: list[Path] | None = None) -> jinja2.Environment:
    """Templates from ``extra_dirs`` first (user overrides), then veilbench's own."""
    loader = jinja2.FileSystemLoader([*(extra_dirs or []), TEMPLATES])
    return jinja2.Environment(loader=loader, autoescape=True, undefined=jinja2.StrictUndefined)


def render_html(doc: dict[str, Any]) -> str:
    return environment().get_template("report.html").render(doc=doc)


def render_report(doc: dict[str, Any], path: str | Path) -> Path:
    return write_text_atomic(path, render_html(doc))

"""Render the plugin contracts' docstrings into docs/plugins.md, so the two cannot disagree.

    python -m veilbench.plugin_docs          # rewrite the generated part of docs/plugins.md
    python -m veilbench.plugin_docs --check  # exit 1 when docs/plugins.md is out of date

Everything between the ``BEGIN``/``END`` markers in docs/plugins.md comes from the objects in
:data:`CONTRACTS`; the test suite fails when a contract changes and the page does not follow.
"""

from __future__ import annotations

import dataclasses
import inspect
import re
import sys
from pathlib import Path
from typing import Any

from veilbench.lazy import load

BEGIN = "<!-- BEGIN GENERATED CONTRACTS: python -m veilbench.plugin_docs -->"
END = "<!-- END GENERATED CONTRACTS -->"
DOC = Path(__file__).resolve().parents[1] / "docs" / "plugins.md"

#: (section title, objects as "module:attr"; a bare module renders its docstring).
CONTRACTS: list[tuple[str, list[str]]] = [
    (
        "Hooks",
        [
            "veilbench.hookspecs",
            "veilbench.hookspecs:register_models",
            "veilbench.hookspecs:register_protectors",
            "veilbench.hookspecs:register_attacks",
            "veilbench.hookspecs:register_adversaries",
            "veilbench.hookspecs:register_datasets",
            "veilbench.hookspecs:register_measurements",
            "veilbench.hookspecs:register_commands",
        ],
    ),
    (
        "Protectors",
        [
            "veilbench.protectors.contract:Protector",
            "veilbench.protectors.contract:traits",
            "veilbench.protectors.contract:make_config",
            "veilbench.veilfile:Veil",
            "veilbench.veilfile:apply_veil",
            "veilbench.veilfile:recover_images",
        ],
    ),
    (
        "Models",
        [
            "veilbench.models.base",
            "veilbench.models.base:FaceSpace",
            "veilbench.models.base:InputSpec",
            "veilbench.models.base:ModelCard",
            "veilbench.models.base:FaceModel",
            "veilbench.weights:WeightFile",
        ],
    ),
    (
        "Datasets",
        [
            "veilbench.data.datasets:FaceDataset",
            "veilbench.data.datasets:ImageRef",
            "veilbench.data.datasets:image_folder",
        ],
    ),
    ("Attacks", ["veilbench.attacks"]),
    (
        "Measurements",
        [
            "veilbench.measurements.contract",
            "veilbench.measurements.contract:Measurement",
            "veilbench.measurements.contract:Context",
            "veilbench.measurements.contract:Where",
            "veilbench.measurements.contract:RunView",
            "veilbench.measurements.contract:Metric",
            "veilbench.measurements.contract:MetricValue",
            "veilbench.measurements.records:Rate",
            "veilbench.measurements.records:rate_of",
        ],
    ),
    (
        "Adversaries",
        [
            "veilbench.adversaries",
            "veilbench.adversaries.contract:ThreatModel",
            "veilbench.adversaries.contract:PublicKnowledge",
            "veilbench.adversaries.contract:Adversary",
        ],
    ),
    ("Lazy imports", ["veilbench.lazy:factory", "veilbench.lazy:LazyCommand"]),
    ("Testing a plugin", ["veilbench.testing", "veilbench.testing:run_in_process"]),
]

_ROLE = re.compile(r":(?:class|func|mod|data|meth|attr):`(~?)([^`]+)`")


def markdown(doc: str) -> str:
    """A reStructuredText-flavoured docstring as Markdown (literals, roles, ``::`` blocks)."""
    # ``~a.b.C`` shows as ``C``, as Sphinx does
    doc = _ROLE.sub(lambda m: f"`{m.group(2).split('.')[-1] if m.group(1) else m.group(2)}`", doc)
    doc = re.sub(r"``([^`]+)``", r"`\1`", doc)
    doc = re.sub(r"^:param (\w+):", r"- `\1`:", doc, flags=re.M)
    out: list[str] = []
    lines = doc.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.rstrip().endswith("::"):
            out += [line.rstrip()[:-1].rstrip(), ""]  # "Example::" -> "Example:"
            i += 1
            while i < len(lines) and not lines[i].strip():
                i += 1
            block = []
            while i < len(lines) and (not lines[i].strip() or lines[i].startswith("    ")):
                block.append(lines[i][4:])
                i += 1
            while block and not block[-1].strip():
                block.pop()
            language = "toml" if block and block[0].startswith("# pyproject.toml") else "python"
            out += [f"```{language}", *block, "```", ""]
            continue
        out.append(line)
        i += 1
    return "\n".join(out).strip()


def _field_comments(cls: type) -> dict[str, str]:
    """``#:`` comments above each dataclass field in the source."""
    comments: dict[str, str] = {}
    pending: list[str] = []
    for line in inspect.getsource(cls).splitlines():
        stripped = line.strip()
        if stripped.startswith("#:"):
            pending.append(stripped[2:].strip())
        elif m := re.match(r"(\w+)\s*:", stripped):
            if pending:
                comments[m.group(1)] = " ".join(pending)
            pending = []
        else:
            pending = []
    return comments


def _fields_table(cls: type) -> list[str]:
    comments = _field_comments(cls)
    rows = ["| field | type | default | meaning |", "|---|---|---|---|"]
    for f in dataclasses.fields(cls):
        if f.default is not dataclasses.MISSING:
            default = f"`{f.default!r}`"
        elif f.default_factory is not dataclasses.MISSING:
            default = "(built)"
        else:
            default = "required"
        meaning = markdown(comments.get(f.name, "")).replace("|", "\\|")
        rows.append(f"| `{f.name}` | `{f.type}` | {default} | {meaning} |")
    return rows


def _signature(obj: Any) -> str:
    """``inspect.signature`` without the quotes postponed annotations carry."""
    text = str(inspect.signature(obj))
    return re.sub(r"(: |-> )'([^']*)'", r"\1\2", text)


def _methods(cls: type) -> list[str]:
    out = []
    for name, member in vars(cls).items():
        if name.startswith("_") or not inspect.isfunction(member):
            continue
        out.append(f"def {name}{_signature(member)}")
    return out


def render_object(target: str) -> str:
    obj: Any = load(target) if ":" in target else __import__(target, fromlist=["_"])
    title = target.replace(":", ".")
    lines = [f"### `{title}`", ""]
    if inspect.isclass(obj):
        if dataclasses.is_dataclass(obj):
            lines += ["```python", f"class {obj.__name__}{_signature(obj)}", "```", ""]
        else:
            methods = _methods(obj)
            lines += ["```python", f"class {obj.__name__}:", *(f"    {m}" for m in methods)]
            lines += ["```", ""]
    elif inspect.isfunction(obj):
        lines += ["```python", f"def {obj.__name__}{_signature(obj)}", "```", ""]
    lines.append(markdown(inspect.getdoc(obj) or "(undocumented)"))
    if inspect.isclass(obj) and dataclasses.is_dataclass(obj):
        lines += ["", *_fields_table(obj)]
    return "\n".join(lines)


def render() -> str:
    """The generated part of docs/plugins.md, markers included."""
    parts = [BEGIN, ""]
    for title, targets in CONTRACTS:
        parts += [f"## Contract: {title.lower()}", ""]
        parts += [render_object(t) + "\n" for t in targets]
    parts.append(END)
    return "\n".join(parts)


def updated(text: str) -> str:
    """``text`` with its generated part replaced by :func:`render`'s."""
    if BEGIN not in text or END not in text:
        raise ValueError(f"{DOC} lacks the generated-contracts markers")
    head, _, rest = text.partition(BEGIN)
    _, _, tail = rest.partition(END)
    return head + render() + tail


def main(argv: list[str]) -> int:
    text = DOC.read_text()
    new = updated(text)
    if "--check" in argv:
        if new != text:
            print(f"{DOC} is out of date: run python -m veilbench.plugin_docs", file=sys.stderr)
            return 1
        return 0
    DOC.write_text(new)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

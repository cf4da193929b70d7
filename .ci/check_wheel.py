"""Check an installed (non-editable) veilbench wheel: run from outside the source tree.

Asserts that the package comes from site-packages, that every built-in plugin loads, that the
report templates and ``py.typed`` are inside it, and that a report renders from a results file.
"""

from __future__ import annotations

import subprocess
import sys
import sysconfig
import tempfile
from importlib import resources
from pathlib import Path


def main(results_file: str) -> None:
    import veilbench
    from veilbench.plugins import get_plugins

    site = Path(sysconfig.get_paths()["purelib"]).resolve()
    where = Path(veilbench.__file__).resolve()
    assert site in where.parents, f"veilbench imported from {where}, not from {site}"
    package = resources.files("veilbench")
    assert package.joinpath("py.typed").is_file(), "py.typed missing from the wheel"
    templates = [t.name for t in package.joinpath("report", "templates").iterdir()]
    assert "report.html" in templates, f"report templates missing: {templates}"

    plugins = get_plugins().plugin_versions()
    builtin = {p["name"]: p["status"] for p in plugins if p["builtin"]}
    expected = {
        "builtin-models",
        "builtin-protectors",
        "builtin-attacks",
        "builtin-datasets",
    }
    assert expected <= set(builtin), f"built-in plugins missing: {expected - set(builtin)}"
    assert set(builtin.values()) == {"loaded"}, f"built-in plugins not loaded: {builtin}"

    exe = Path(sys.executable).with_name("veilbench")
    for args in (
        ["--version"],
        ["--help"],
        ["list", "models"],
        ["list", "protectors"],
        ["craft", "--help"],
    ):
        subprocess.run([str(exe), *args], check=True, capture_output=True, text=True)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "report.html"
        subprocess.run([str(exe), "report", results_file, "-o", str(out)], check=True)
        assert out.stat().st_size > 10_000, "report suspiciously small"
    print(f"wheel OK: {where.parent} ({len(templates)} templates, {len(builtin)} built-in plugins)")


if __name__ == "__main__":
    main(sys.argv[1])

"""A plugin package written only against the documented contracts, run by its own tests.

``tests/plugin_pkg`` registers one plugin of each kind; its tests use veilbench's pytest
fixtures. They run here in a fresh pytest process with the package on the path (CI also
installs it: ``pip install ./tests/plugin_pkg``).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

PKG = Path(__file__).resolve().parent / "plugin_pkg"


def test_plugin_package_passes_its_own_tests(tmp_path):
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(PKG), os.environ.get("PYTHONPATH", "")]),
        # The fixtures come from -p below, whether or not veilbench's entry point is installed.
        "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1",
        "VEILBENCH_PROGRESS": "0",
    }
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "veilbench.testing", str(PKG / "tests")],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert "4 passed" in proc.stdout.splitlines()[-1]

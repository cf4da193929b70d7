"""One run per --out: a second process is refused, naming the first; leftovers are cleared."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from veilbench.errors import ConfigError
from veilbench.outdir import LOCK_NAME, claim_output

HOLD = (
    "import sys, time\n"
    "from veilbench.outdir import claim_output\n"
    "with claim_output(sys.argv[1]):\n"
    "    print('held', flush=True)\n"
    "    time.sleep(60)\n"
)


def _holder(out) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(out)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_second_run_on_the_same_out_is_refused_and_a_killed_one_leaves_nothing(tmp_path):
    out = tmp_path / "run"
    holder = _holder(out)
    try:
        with pytest.raises(
            ConfigError, match=f"in use by another veilbench run \\(pid {holder.pid}"
        ):
            with claim_output(out):
                pass
        # What the killed process was writing when it died (mkstemp names).
        (out / "veils" / "sface").mkdir(parents=True)
        stale = [
            out / ".results.json.ab12_xyz.veilbench-tmp",
            out / "veils" / "sface" / ".Ann.veil.q1w2e3r4.veilbench-tmp",
        ]
        for path in stale:
            path.write_bytes(b"half")
        keep = out / "veils" / "sface" / "Ann.veil"
        keep.write_bytes(b"a finished file")
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    started = time.time()
    with claim_output(out):  # the kernel dropped the dead process's lock
        assert not any(p.exists() for p in stale)
        assert keep.read_bytes() == b"a finished file"
        assert str(os.getpid()) in (out / LOCK_NAME).read_text()
    assert time.time() - started < 5

"""Figure 4: `veilbench protect` throughput vs bare decode + encode with the same thread pool."""

from __future__ import annotations

import contextlib
import io
import shutil
import tempfile
from pathlib import Path

import torch
from bench_common import Context, lfw_gallery, median, timed

from veilbench.commands.protect import protect_command
from veilbench.data.crops import canonical_crops
from veilbench.data.images import save_png, write_images
from veilbench.models.base import FaceSpace
from veilbench.veilfile import Veil, save_veil

GOAL = 0.8


def protect(ctx: Context, craft_s: float | None = None) -> dict:
    """Photos/s of the protect command on canonical-crop PNGs, and of bare PNG decode+encode."""
    n = ctx.size(600, 200, 8)
    repeats = ctx.size(3, 2, 1)
    _, crops = lfw_gallery(n)
    space = FaceSpace()
    root = Path(tempfile.mkdtemp(prefix="veilbench-bench-"))
    try:
        src = root / "in"
        for i, crop in enumerate(crops):
            save_png(src / f"{i:05d}.png", crop)
        paths = sorted(src.iterdir())
        # The veil's pixels do not change the cost of applying it: a random one will do.
        veil_file = root / "bench.veil"
        save_veil(
            veil_file,
            Veil(
                torch.randint(0, 256, (3, space.size, space.size)).float(),
                alpha=0.2,
                protector="veil",
            ),
        )
        out = str(root / "out")  # replaced by every repeat, as the bare side's files are
        args = ["--veil", str(veil_file), str(src), "-o", out, "--alignment", "none", "--force"]

        def command() -> None:
            with contextlib.redirect_stdout(io.StringIO()):  # its "protected N photos" line
                protect_command.main(args, standalone_mode=False)

        (root / "bare").mkdir()

        def bare() -> None:
            kept, images, _ = canonical_crops(paths, space, "none")
            targets = [root / "bare" / f"{p.stem}.png" for p in kept]
            write_images(targets, images, "png", 95, force=True)

        command()  # warm-up (and the first write of every output file)
        bare()
        t_cmd, t_bare = [], []
        for _ in range(repeats):
            t_cmd.append(timed(command))
            t_bare.append(timed(bare))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    cmd_rate, bare_rate = n / median(t_cmd), n / median(t_bare)
    out = {
        "photos": len(paths),
        "repeats": repeats,
        "protect_s": t_cmd,
        "bare_s": t_bare,
        "protect_photos_per_s": cmd_rate,
        "bare_photos_per_s": bare_rate,
        "ratio": cmd_rate / bare_rate,
        "goal": GOAL,
        "protect_1000_photos_s": 1000 / cmd_rate,
    }
    ctx.add("protect throughput", cmd_rate, "photos/s", "", f"{n} PNG crops, the CLI command")
    ctx.add(
        "protect / bare decode+encode",
        cmd_rate / bare_rate,
        "x",
        f">= {GOAL}",
        f"bare: {bare_rate:.0f} photos/s, same thread pool",
    )
    if craft_s:
        out["craft_one_veil_s"] = craft_s
        out["protect_1000_over_craft_one"] = 1000 / cmd_rate / craft_s
        ctx.add(
            "protect 1,000 photos / craft one veil",
            1000 / cmd_rate / craft_s,
            "x",
            "",
            f"{1000 / cmd_rate:.1f}s vs {craft_s:.0f}s (10 photos, sface+dlib, 60 it)",
        )
    return out

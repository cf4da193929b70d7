"""Figures 5 and 6: gallery embedding via the runner's cache, and 1:N top-k search at scale."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from functools import partial
from pathlib import Path

import torch
from bench_common import Context, lfw_gallery, median, timed

from veilbench.config import RunConfig
from veilbench.evaluation.identification import EmbeddingCache

EMBED_GOAL, CACHE_GOAL, MEMORY_GOAL_GB = 0.85, 10.0, 4.0
SEARCH_SCRIPT = Path(__file__).with_name("bench_search.py")


def _cached_embeddings(model, root: Path, hashes, crops, batch: int, device) -> None:
    """The runner's path on a rerun: open the cache from disk, then get_or_compute."""
    EmbeddingCache(model, root).get_or_compute(
        model, hashes, crops, batch_size=batch, device=device
    )


def embedding(ctx: Context) -> dict:
    """Cold EmbeddingCache.get_or_compute vs bare inference on loaded tensors; cached rerun."""
    sizes = ctx.size((32, 64, 128), (16, 32, 64), (8, 16))
    batch = RunConfig().batch_size  # the runner's batch size
    model = ctx.model("sface")
    hashes, crops = lfw_gallery(max(sizes))
    tensor = torch.from_numpy(crops).permute(0, 3, 1, 2).float().to(ctx.device)

    @torch.no_grad()
    def bare(n: int) -> None:
        for i in range(0, n, batch):
            model(tensor[i : min(i + batch, n)])

    root = Path(tempfile.mkdtemp(prefix="veilbench-bench-"))
    out: dict = {"model": "sface", "batch_size": batch, "sizes": {}}
    try:
        bare(8)  # warm-up
        for n in sizes:
            cache_root = root / str(n)
            compute = partial(
                _cached_embeddings, model, cache_root, hashes[:n], crops[:n], batch, ctx.device
            )
            cold = timed(compute)
            t_bare = timed(partial(bare, n))
            cached = median([timed(compute) for _ in range(3)])
            out["sizes"][n] = {
                "cold_s": cold,
                "bare_s": t_bare,
                "cached_s": cached,
                "ratio": t_bare / cold,
                "cache_speedup": cold / cached,
            }
    finally:
        shutil.rmtree(root, ignore_errors=True)
    big = out["sizes"][max(sizes)]
    ctx.add(
        "gallery embedding: runner path / bare",
        big["ratio"],
        "x",
        f">= {EMBED_GOAL}",
        f"{max(sizes)} LFW crops, sface, {max(sizes) / big['cold_s']:.1f} img/s",
    )
    ctx.add(
        "cached rerun speed-up",
        big["cache_speedup"],
        "x",
        f">= {CACHE_GOAL:g}",
        "new EmbeddingCache (reads shards) + get_or_compute",
    )
    for n, s in out["sizes"].items():
        ctx.add(f"gallery embedding, {n} images", s["cold_s"], "s", "", "cold cache, sface")
    return out


def _search(ctx: Context, gallery: int, queries: int, scan: int | None = None) -> dict:
    """One measurement in a fresh process, so its peak RSS is the search's own."""
    args = [
        sys.executable,
        str(SEARCH_SCRIPT),
        "--gallery",
        str(gallery),
        "--queries",
        str(queries),
        "--device",
        str(ctx.device),
    ]
    if scan:
        args += ["--scan", str(scan)]
    done = subprocess.run(args, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def search(ctx: Context) -> dict:
    """topk_search of 10k queries (its default chunk): time vs GEMM, peak memory, scaling."""
    big = ctx.size(1_000_000, 100_000, 2_000)
    queries = ctx.size(10_000, 10_000, 100)
    head = _search(ctx, big, queries)
    scaling_sizes = ctx.size((100_000, 300_000, 1_000_000), (25_000, 50_000, 100_000), (1_000,))
    scaling = {n: _search(ctx, n, 1_000) for n in scaling_sizes}
    ctx.add(
        f"top-1 search {queries:,} x {big:,} (chunk {head['chunk']})",
        head["search_s"],
        "s",
        "",
        f"{head['search_s'] / head['gemm_equiv_s']:.2f}x the pure-GEMM time "
        f"({head['gemm_gflops']:.0f} GFLOP/s on one chunk)",
    )
    ctx.add(
        "search peak memory (RSS, incl. gallery)",
        head["peak_rss_gb"],
        "GB",
        f"< {MEMORY_GOAL_GB:g}",
        f"search alone +{head['search_rss_delta_gb']:.2f} GB",
    )
    if head.get("device_peak_gb") is not None:
        ctx.add(
            "search peak GPU memory (incl. gallery)",
            head["device_peak_gb"],
            "GB",
            f"< {MEMORY_GOAL_GB:g}",
            f"search alone +{head['device_search_delta_gb']:.2f} GB",
        )
    for n, s in scaling.items():
        ctx.add(
            f"search 1k queries x {n:,}",
            s["search_s"],
            "s",
            "",
            f"{s['search_s'] / s['gemm_equiv_s']:.2f}x pure GEMM",
        )
    return {"headline": head, "scaling_1k_queries": scaling, "goal_peak_gb": MEMORY_GOAL_GB}

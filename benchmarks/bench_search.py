"""One topk_search measurement in its own process (peak RSS is per process); prints JSON.

    python benchmarks/bench_search.py --gallery 1000000 --queries 10000 --chunk 4096
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

import torch

from veilbench.evaluation.identification import topk_search

DIM = 512


def rss_gb() -> float:
    """Current resident set size (GB)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e9


def peak_rss_gb() -> float:
    """Peak resident set size of this process (GB), from VmHWM.

    Not ru_maxrss: Linux carries it over from the parent across fork + exec, so a child of the
    suite's big process would report the parent's size.
    """
    with open("/proc/self/status") as f:
        kib = next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))
    return kib * 1024 / 1e9


def unit_rows(n: int, seed: int) -> torch.Tensor:
    """n x 512 random unit vectors, normalised in place (no second full-size copy)."""
    x = torch.empty(n, DIM)
    x.normal_(generator=torch.Generator().manual_seed(seed))
    x /= x.norm(dim=1, keepdim=True)
    return x


def topk_merged(
    queries: torch.Tensor, gallery: torch.Tensor, k: int = 1, chunk: int = 65536
) -> tuple[torch.Tensor, torch.Tensor]:
    """The fix proposed for ``topk_search``: top-k of each chunk first, then merge 2k columns.

    The current code concatenates the running best with the whole q x chunk score block and a
    q x chunk int64 index block before its top-k; this copies neither.
    """
    best_s = torch.full((queries.shape[0], k), -float("inf"), dtype=queries.dtype)
    best_i = torch.full((queries.shape[0], k), -1, dtype=torch.long)
    for start in range(0, gallery.shape[0], chunk):
        s, i = (queries @ gallery[start : start + chunk].T).topk(
            min(k, min(chunk, gallery.shape[0] - start)), dim=1
        )
        all_s, all_i = torch.cat([best_s, s], 1), torch.cat([best_i, i + start], 1)
        best_s, pos = all_s.topk(k, dim=1)
        best_i = all_i.gather(1, pos)
    return best_s, best_i


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--gallery", type=int, required=True)
    p.add_argument("--queries", type=int, required=True)
    p.add_argument("--chunk", type=int, default=None, help="topk_search's chunk (its default)")
    p.add_argument("--scan", type=int, default=None, help="search only the first SCAN rows")
    p.add_argument("--variant", choices=("current", "merged"), default="current")
    args = p.parse_args()
    search = topk_search if args.variant == "current" else topk_merged
    gallery, queries = unit_rows(args.gallery, 0), unit_rows(args.queries, 1)
    kwargs = {"chunk": args.chunk} if args.chunk else {}
    scanned = gallery[: args.scan] if args.scan else gallery
    before = rss_gb()  # gallery and queries
    t0 = time.perf_counter()
    search(queries, scanned, k=1, **kwargs)
    seconds = time.perf_counter() - t0
    peak = peak_rss_gb()
    # Then the GEMM rate on one chunk-sized product: the cost if the search were all GEMM.
    block = gallery[: args.chunk or 65536]
    queries @ block.T
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        queries @ block.T
        times.append(time.perf_counter() - t0)
    gemm_gflops = 2 * queries.shape[0] * block.shape[0] * DIM / statistics.median(times) / 1e9
    flop = 2 * queries.shape[0] * scanned.shape[0] * DIM
    print(json.dumps({
        "gallery": args.gallery, "queries": args.queries, "scanned": scanned.shape[0],
        "chunk": args.chunk or "default", "variant": args.variant, "search_s": seconds,
        "gemm_gflops": gemm_gflops, "gemm_equiv_s": flop / gemm_gflops / 1e9,
        "search_gflops": flop / seconds / 1e9, "baseline_rss_gb": before,
        "peak_rss_gb": peak, "search_rss_delta_gb": max(0.0, peak - before),
    }))


if __name__ == "__main__":
    main()

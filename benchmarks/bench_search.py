"""One topk_search measurement in its own process (peak RSS is per process); prints JSON.

    python benchmarks/bench_search.py --gallery 1000000 --queries 10000 [--chunk N] [--device cuda]

The chunk defaults to ``topk_search``'s own choice (a 256 MB score block).
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


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--gallery", type=int, required=True)
    p.add_argument("--queries", type=int, required=True)
    p.add_argument("--chunk", type=int, default=None, help="topk_search's chunk (its default)")
    p.add_argument("--scan", type=int, default=None, help="search only the first SCAN rows")
    p.add_argument("--device", default="cpu")
    args = p.parse_args()
    device = torch.device(args.device)
    cuda = device.type == "cuda"
    gallery = unit_rows(args.gallery, 0).to(device)
    queries = unit_rows(args.queries, 1).to(device)
    scanned = gallery[: args.scan] if args.scan else gallery
    # The chunk topk_search picks by itself unless one is given.
    chunk = args.chunk or max(1, (256 << 20) // (queries.shape[0] * queries.element_size()))

    def wait() -> None:
        if cuda:
            torch.cuda.synchronize()

    before = rss_gb()  # gallery and queries
    if cuda:
        torch.cuda.reset_peak_memory_stats()
        before_dev = torch.cuda.memory_allocated() / 1e9
    wait()
    t0 = time.perf_counter()
    topk_search(queries, scanned, k=1, chunk=args.chunk)
    wait()
    seconds = time.perf_counter() - t0
    peak = peak_rss_gb()
    device_peak = torch.cuda.max_memory_allocated() / 1e9 if cuda else None
    # Then the GEMM rate on one chunk-sized product: the cost if the search were all GEMM.
    block = gallery[:chunk]
    queries @ block.T
    times = []
    for _ in range(3):
        wait()
        t0 = time.perf_counter()
        queries @ block.T
        wait()
        times.append(time.perf_counter() - t0)
    gemm_gflops = 2 * queries.shape[0] * block.shape[0] * DIM / statistics.median(times) / 1e9
    flop = 2 * queries.shape[0] * scanned.shape[0] * DIM
    print(
        json.dumps(
            {
                "gallery": args.gallery,
                "queries": args.queries,
                "scanned": scanned.shape[0],
                "chunk": chunk,
                "chunk_given": bool(args.chunk),
                "device": str(device),
                "device_peak_gb": device_peak,
                "device_search_delta_gb": device_peak - before_dev if cuda else None,
                "search_s": seconds,
                "gemm_gflops": gemm_gflops,
                "gemm_equiv_s": flop / gemm_gflops / 1e9,
                "search_gflops": flop / seconds / 1e9,
                "baseline_rss_gb": before,
                "peak_rss_gb": peak,
                "search_rss_delta_gb": max(0.0, peak - before),
            }
        )
    )


if __name__ == "__main__":
    main()

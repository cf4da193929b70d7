"""Print the privacy-under-attack tables of one or more results files as Markdown.

    python benchmarks/adversaries_table.py reports/adversaries-lfw/results.json

One row per surrogate set, adversary and k: rank-1 of the reconstructions per target
(``*`` = white-box, the model that crafted the veils), the do-nothing attacker's black-box
rank-1 on the same protected photos, and SSIM / LPIPS / PSNR of reconstruction vs original;
then white-box / black-box MSR and recovered SSIM of the protected photos, for context.
"""

from __future__ import annotations

import sys

from veilbench.results import read_results


def fmt(value: float | None, digits: int = 2) -> str:
    return "n/a" if value is None or value != value else f"{value:.{digits}f}"


def main(paths: list[str]) -> None:
    for path in paths:
        doc = read_results(path)
        print(f"\n{path}: {len(doc.split.get('probes', []))} identities\n")
        print(
            "| veils from | adversary | k | people | rank-1 per target | do nothing | SSIM | "
            "LPIPS | PSNR |"
        )
        print("|---|---|---|---|---|---|---|---|---|")
        for s in doc.results.sets():
            key, attacked = s.key, s.records.get("adversaries")
            for a in attacked.results if attacked else []:
                cells = ", ".join(
                    f"{t}{'*' if s.white_box(t) else ''} {fmt(c.rank1.value)}"
                    for t, c in a.reid.items()
                )
                base = [c.rank1.value for t, c in a.baseline.items() if not s.white_box(t)]
                q = a.quality
                print(
                    f"| {key} | {a.adversary} | {a.k} | {a.identities} | {cells} | "
                    f"{fmt(base[0] if base else None)} | {fmt(q.ssim)} | {fmt(q.lpips)} | "
                    f"{fmt(q.psnr, 1)} |"
                )
        print("\n| veils from | white-box MSR | black-box MSR | recovered SSIM | held-out photos |")
        print("|---|---|---|---|---|")
        for s in doc.results.sets():
            r, rec = s.records["privacy"]["held_out"], s.records["image_quality"].recovered
            n = next(iter(s.records["msr"].values()))["held_out"].n
            print(
                f"| {s.key} | {fmt(r.service_msr)} | {fmt(r.attacker_msr)} | "
                f"{fmt(rec.ssim if rec else None)} | {n} |"
            )


if __name__ == "__main__":
    main(sys.argv[1:])

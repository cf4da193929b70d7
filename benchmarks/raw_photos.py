"""What the YuNet path keeps and drops on a folder of raw photos (``<identity>/<file>``).

    python benchmarks/raw_photos.py ../shared/data/celeb-dev [--identities N]

Counts, per dataset and per identity: files, unreadable files, photos with no face (YuNet score
>= 0.7), with one face and with several (the main face is then the largest nearest the centre:
``side / (1 + 2 * distance to the centre / shorter side)``, as ``veilbench.data.align`` picks
it). Prints a markdown table; nothing is written.
"""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path

from veilbench.data.align import FaceAligner
from veilbench.data.datasets import image_folder
from veilbench.data.images import load_rgb
from veilbench.models.base import FaceSpace


def main(root: str, identities: int | None = None) -> None:
    dataset = image_folder(root)
    aligner = FaceAligner(FaceSpace(), method="yunet")
    per: dict[str, Counter] = {}
    kept = sorted({ref.identity for ref in dataset.refs})[:identities]
    for ref in (r for r in dataset.refs if r.identity in kept):
        c = per.setdefault(ref.identity, Counter())
        c["files"] += 1
        try:
            image = load_rgb(ref.path)
        except Exception:  # anything the loader refuses is what a run drops as unreadable
            c["unreadable"] += 1
            continue
        n = len(aligner.detect(image))
        c["no face" if n == 0 else "one face" if n == 1 else "several faces"] += 1
    keys = ["files", "unreadable", "no face", "one face", "several faces"]
    print(f"{Path(root).name}: {len(per)} identities\n")
    print("| identity | " + " | ".join(keys) + " |")
    print("|---|" + "---:|" * len(keys))
    total: Counter = Counter()
    for name, c in sorted(per.items()):
        total.update(c)
        print(f"| {name} | " + " | ".join(str(c[k]) for k in keys) + " |")
    print("| **all** | " + " | ".join(f"**{total[k]}**" for k in keys) + " |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root")
    parser.add_argument("--identities", type=int, default=None, help="only the first N (sorted)")
    args = parser.parse_args()
    main(args.root, args.identities)

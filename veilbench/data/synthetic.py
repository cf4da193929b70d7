"""The synthetic smoke dataset: drawn cartoon faces, generated deterministically by veilbench.

It exists so that ``veilbench run`` does something end to end on a machine with no face data.
Its numbers are NOT meaningful (real FR models were not trained on drawings); every result and
report made from it says so.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from veilbench.data.datasets import FaceDataset, image_folder
from veilbench.data.images import save_png
from veilbench.data.space import FaceSpace
from veilbench.weights import cache_dir

SYNTHETIC_WARNING = (
    "synthetic faces: numbers are not meaningful; get LFW with `--dataset PATH_TO_LFW` "
    "(lfw-deepfunneled.tgz or its folder) or set VEILBENCH_DATA"
)
VERSION = 1


def draw_face(rng: np.random.Generator, identity: np.ndarray, space: FaceSpace) -> np.ndarray:
    """One photo of the identity described by ``identity`` (a vector of 12 numbers in [0, 1])."""
    S = space.size
    k = space.template_size / 112.0
    m = space.margin
    bg = rng.uniform(40, 220, 3)
    img = np.empty((S, S, 3), np.float32)
    img[:] = bg
    jitter = rng.normal(0, 1.5, 2) * k
    cx, cy = S / 2 + jitter[0], m + 68 * k + jitter[1]
    skin = 90 + 140 * identity[0:3]
    axes = (int((34 + 8 * identity[3]) * k), int((46 + 8 * identity[4]) * k))
    cv2.ellipse(img, (int(cx), int(cy)), axes, 0, 0, 360, skin.tolist(), -1, cv2.LINE_AA)
    hair = 30 + 120 * identity[5:8]
    cv2.ellipse(
        img,
        (int(cx), int(cy - axes[1] * 0.6)),
        (axes[0], int(axes[1] * 0.5)),
        0,
        180,
        360,
        hair.tolist(),
        -1,
        cv2.LINE_AA,
    )
    eye_dx = (16 + 5 * identity[8]) * k
    eye_y = m + 52 * k + jitter[1]
    for sx in (-1, 1):
        centre = (int(cx + sx * eye_dx), int(eye_y))
        cv2.ellipse(
            img,
            centre,
            (int(6 * k), int(3 * k + 2 * identity[9])),
            0,
            0,
            360,
            (245, 245, 245),
            -1,
            cv2.LINE_AA,
        )
        cv2.circle(img, centre, int(2.5 * k), (30 + 60 * identity[10], 40, 30), -1, cv2.LINE_AA)
    nose = np.array([[cx, m + 60 * k], [cx - 5 * k, m + 74 * k], [cx + 5 * k, m + 74 * k]])
    cv2.polylines(img, [nose.astype(np.int32)], True, (skin * 0.7).tolist(), 1, cv2.LINE_AA)
    mouth_w = int((12 + 8 * identity[11]) * k)
    cv2.ellipse(
        img,
        (int(cx), int(m + 92 * k + jitter[1])),
        (mouth_w, int(4 * k)),
        0,
        0,
        180,
        (120, 40, 50),
        2,
        cv2.LINE_AA,
    )
    img *= rng.uniform(0.85, 1.15)
    img += rng.normal(0, 4, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def synthetic(
    identities: int = 40,
    images_per_identity: int = 20,
    singles: int = 60,
    seed: int = 0,
    space: FaceSpace | None = None,
) -> FaceDataset:
    """Generate (once, cached) ``identities`` people with many photos plus one-photo extras."""
    space = space or FaceSpace()
    key = (
        f"synthetic-v{VERSION}-s{seed}-i{identities}x{images_per_identity}-o{singles}-{space.size}"
    )
    root = cache_dir() / "datasets" / key
    done = root / ".complete"
    if not done.is_file():
        rng = np.random.default_rng(seed)
        people = [(f"synthetic_{i:03d}", images_per_identity) for i in range(identities)]
        people += [(f"synthetic_single_{i:03d}", 1) for i in range(singles)]
        for name, count in people:
            traits = rng.uniform(0, 1, 12)
            for j in range(count):
                save_png(Path(root, name, f"{name}_{j + 1:04d}.png"), draw_face(rng, traits, space))
        done.write_text("ok\n")
    ds = image_folder(root, name="synthetic", alignment="none")
    ds.synthetic = True
    ds.description = SYNTHETIC_WARNING
    return ds

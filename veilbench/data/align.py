"""Faces in, canonical crops out: detector landmarks + a similarity transform, or a fixed box.

Two detectors give the 5 points: YuNet (the default; OpenCV's, fast) and MTCNN
(:mod:`veilbench.data.mtcnn`; the landmarks most margin-loss models were trained with).

The canonical crop is :class:`~veilbench.models.base.FaceSpace`: the ArcFace 5-point template
(insightface's ``norm_crop``) scaled to ``template_size`` with a ``margin`` around it.
Pixels the warp needs from outside the photo are filled by replicating the nearest edge pixel
(``cv2.BORDER_REPLICATE``), not black as in insightface: a black wedge is a hard edge that
models and attacks would react to, a smeared edge is close to what a wider photo holds.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import cv2
import numpy as np

from veilbench.data.space import DETECTORS, FaceSpace
from veilbench.errors import DataError
from veilbench.weights import YUNET, resolve

#: The square in LFW deep-funneled 250 x 250 photos that the 112 x 112 ArcFace template square
#: (0, 0, 112, 112) maps onto. Measured on lfw-dev: YuNet landmarks on the first photo of 300
#: random people (seed 0; all 300 detected), one similarity fit per photo to the template
#: (``similarity_transform``), the 4 parameters (a, b, tx, ty) averaged; the mean rotation
#: (0.33 deg) is dropped and the box centred where the template centre lands. The mean scale is
#: 0.859 crop px per photo px (box side 130.4 px); per-photo fits scatter by 8.5% in scale and
#: 3.6 / 2.7 px (x / y) in where the template centre lands.
DEEP_FUNNELED_BOX: tuple[float, float, float, float] = (60.83, 50.85, 191.18, 181.2)
DEEP_FUNNELED_SIZE = 250

#: Faces YuNet scores below this are not faces.
SCORE_THRESHOLD = 0.7
#: Photos larger than this (longest side) are shrunk for detection only; the crop is taken from
#: the full-resolution photo.
DETECT_MAX_SIDE = 960


@dataclass
class AlignedFace:
    """One face in canonical space, and where it came from."""

    crop: np.ndarray  # float32 S x S x 3 RGB in [0, 255]
    landmarks: np.ndarray  # 5 x 2 in the photo's pixels, insightface order (see ``FaceAligner``)
    matrix: np.ndarray  # 2 x 3 similarity, photo pixels -> crop pixels
    score: float | None  # detector confidence; None when no detector ran ("center")
    n_faces: int  # faces found in the photo (1 assumed for "center")
    method: str  # "yunet", "mtcnn" or "center"


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity (Umeyama 1991, as in insightface) taking ``src`` to ``dst``."""
    src = np.asarray(src, np.float64)
    dst = np.asarray(dst, np.float64)
    mu_s, mu_d = src.mean(0), dst.mean(0)
    s, d = src - mu_s, dst - mu_d
    cov = d.T @ s / len(src)
    u, sig, vt = np.linalg.svd(cov)
    flip = np.eye(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:  # a reflection is not a similarity
        flip[1, 1] = -1
    rot = u @ flip @ vt
    scale = np.trace(np.diag(sig) @ flip) / s.var(0).sum()
    m = np.zeros((2, 3))
    m[:, :2] = scale * rot
    m[:, 2] = mu_d - scale * rot @ mu_s
    return m


def warp(image_rgb: np.ndarray, matrix: np.ndarray, size: int) -> np.ndarray:
    """Apply a 2 x 3 photo -> crop transform, giving a float32 size x size x 3 crop."""
    return cv2.warpAffine(
        image_rgb.astype(np.float32),  # float in, so the crop is not re-quantised
        matrix,
        (size, size),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_REPLICATE,
    )


def _check_image(image_rgb: np.ndarray) -> None:
    if image_rgb.ndim != 3 or image_rgb.shape[2] != 3:
        raise DataError(
            f"alignment needs an H x W x 3 RGB image, got shape {image_rgb.shape}; "
            "read photos with veilbench.data.images.load_rgb"
        )


def center_matrix(shape: tuple[int, ...], space: FaceSpace) -> np.ndarray:
    """The fixed photo -> crop transform for deep-funneled framing (scaled to the photo size)."""
    h, w = shape[:2]
    sx, sy = w / DEEP_FUNNELED_SIZE, h / DEEP_FUNNELED_SIZE
    x0, y0, x1, y1 = DEEP_FUNNELED_BOX
    # The box (in this photo's pixels) becomes the template square: margin .. margin + size.
    ax = space.template_size / ((x1 - x0) * sx)
    ay = space.template_size / ((y1 - y0) * sy)
    return np.array(
        [[ax, 0.0, space.margin - ax * x0 * sx], [0.0, ay, space.margin - ay * y0 * sy]]
    )


def center_crop(image_rgb: np.ndarray, space: FaceSpace | None = None) -> AlignedFace:
    """Crop an already aligned photo (LFW deep-funneled framing) with a fixed box."""
    _check_image(image_rgb)
    space = space or FaceSpace()
    m = center_matrix(image_rgb.shape, space)
    inv = cv2.invertAffineTransform(m)
    pts = np.asarray(space.landmarks(), np.float64)
    landmarks = pts @ inv[:, :2].T + inv[:, 2]
    return AlignedFace(warp(image_rgb, m, space.size), landmarks, m, None, 1, "center")


class FaceAligner:
    """Align photos to the canonical crop by YuNet (``"yunet"``) or MTCNN (``"mtcnn"``)
    landmarks, or by a fixed box (``"center"``).

    Both detectors give their 5 points as the subject's right eye, left eye, nose tip, right
    and left mouth corners: in the image that is left-of-image eye first, the same order as
    insightface's ``ARCFACE_TEMPLATE_112``, so the points map onto the template one to one.
    """

    def __init__(
        self,
        space: FaceSpace | None = None,
        method: str = "yunet",
        score_threshold: float = SCORE_THRESHOLD,
    ):
        if method not in DETECTORS + ("center",):
            raise DataError(
                f"unknown alignment method {method!r}; use one of {', '.join(DETECTORS)} "
                "or 'center'"
            )
        self.space = space or FaceSpace()
        self.method = method
        self.score_threshold = score_threshold
        # One detector per thread: setInputSize + detect on a shared one would race.
        self._local = threading.local()

    def detector(self) -> cv2.FaceDetectorYN:
        """This thread's YuNet detector, created on first use ("center" never needs weights)."""
        det = getattr(self._local, "detector", None)
        if det is None:
            # OpenCV's DNN backend warns on every creation about targets it does not use.
            cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
            det = cv2.FaceDetectorYN.create(
                str(resolve(YUNET)), "", (320, 320), self.score_threshold, 0.3, 50
            )
            self._local.detector = det
        return det

    def detect(self, image_rgb: np.ndarray) -> np.ndarray:
        """All faces as an N x 15 array (box x, y, w, h; 5 landmarks; score) in photo pixels."""
        _check_image(image_rgb)
        h, w = image_rgb.shape[:2]
        scale = min(1.0, DETECT_MAX_SIDE / max(h, w))
        rgb = np.ascontiguousarray(image_rgb, dtype=np.uint8)
        if scale < 1.0:
            rgb = cv2.resize(
                rgb, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA
            )
        if self.method == "mtcnn":
            from veilbench.data import mtcnn  # imports torch: only when asked for

            faces = mtcnn.detect(rgb)
        else:
            det = self.detector()
            det.setInputSize((rgb.shape[1], rgb.shape[0]))
            _, found = det.detect(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
            faces = np.zeros((0, 15), np.float32) if found is None else found.copy()
        faces[:, :14] /= scale
        return faces

    def align(self, image_rgb: np.ndarray) -> AlignedFace:
        """One photo -> the canonical crop of its main face; DataError if there is none."""
        if self.method == "center":
            return center_crop(image_rgb, self.space)
        faces = self.detect(image_rgb)
        if len(faces) == 0:
            detector = (
                f"YuNet, score >= {self.score_threshold}" if self.method == "yunet" else "MTCNN"
            )
            raise DataError(
                f"no face found ({detector}); use a photo with a "
                "visible frontal face, or method='center' for photos that are already aligned"
            )
        face = faces[_main_face(faces, image_rgb.shape)]
        landmarks = face[4:14].reshape(5, 2).astype(np.float64)
        m = similarity_transform(landmarks, np.asarray(self.space.landmarks()))
        crop = warp(image_rgb, m, self.space.size)
        return AlignedFace(crop, landmarks, m, float(face[14]), len(faces), self.method)


def _main_face(faces: np.ndarray, shape: tuple[int, ...]) -> int:
    """The face nearest the photo centre, weighted by size: side / (1 + 2 * dist / min side)."""
    h, w = shape[:2]
    side = np.sqrt(faces[:, 2] * faces[:, 3])
    cx = faces[:, 0] + faces[:, 2] / 2
    cy = faces[:, 1] + faces[:, 3] / 2
    dist = np.hypot(cx - w / 2, cy - h / 2)
    return int(np.argmax(side / (1 + 2 * dist / min(h, w))))

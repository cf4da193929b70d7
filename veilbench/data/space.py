"""The canonical crop every photo is aligned to: the space where veils, crops and models meet.

It belongs to the data (aligning, preparing and drawing faces produce it); models read it to
cut their own input out of it (:mod:`veilbench.models.card` re-exports it).
"""

from __future__ import annotations

from dataclasses import dataclass

#: How photos become canonical crops: landmarks of a detector (YuNet, MTCNN), a fixed box for
#: already aligned photos ("center"), or none (the files are canonical crops already).
DETECTORS: tuple[str, ...] = ("yunet", "mtcnn")
ALIGNMENTS: tuple[str, ...] = (*DETECTORS, "center", "none")

#: insightface's 5-point ArcFace template for a 112 x 112 crop (eyes, nose tip, mouth corners).
ARCFACE_TEMPLATE_112: tuple[tuple[float, float], ...] = (
    (38.2946, 51.6963),
    (73.5318, 51.5014),
    (56.0252, 71.7366),
    (41.5493, 92.3655),
    (70.7299, 92.2041),
)


@dataclass(frozen=True)
class FaceSpace:
    """The canonical crop: the ArcFace template scaled to ``template_size`` plus ``margin``."""

    #: Side of the ArcFace template inside the crop (112: the paper's aligned crop).
    template_size: int = 112
    #: Pixels around the template, for models trained on wider chips; S = template + 2 margin.
    margin: int = 16

    @property
    def size(self) -> int:
        return self.template_size + 2 * self.margin

    def landmarks(self) -> list[tuple[float, float]]:
        """Where the 5 template points lie in canonical pixels."""
        s = self.template_size / 112.0
        return [(x * s + self.margin, y * s + self.margin) for x, y in ARCFACE_TEMPLATE_112]

    def box_to_pixels(self, box: tuple[float, float, float, float]) -> tuple[float, ...]:
        """A box in 112-template coordinates, in canonical pixels."""
        s = self.template_size / 112.0
        return tuple(v * s + self.margin for v in box)

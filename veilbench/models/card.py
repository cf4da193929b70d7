"""What a model is, without torch: input specs and model cards (and the canonical crop space,
defined with the data in :mod:`veilbench.data.space`).

Listing models, reading results and writing plugin metadata need these records but not the
networks, so they live here (no torch import) and are re-exported by
:mod:`veilbench.models.base`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from veilbench.data.space import ARCFACE_TEMPLATE_112, FaceSpace  # noqa: F401 (re-exported)
from veilbench.errors import ModelInputError

#: The SphereFace / CosFace 96 x 112 (W x H) crop in ArcFace-template coordinates: its 5-point
#: template is the ArcFace one shifted 8 px left, so it is the ArcFace crop without 8 px a side.
SPHEREFACE_CROP_96X112: tuple[float, float, float, float] = (8.0, 0.0, 104.0, 112.0)


@dataclass(frozen=True)
class InputSpec:
    """How a model wants its input; all of it is applied inside ``FaceModel.forward``.

    ``crop`` is the box the model sees, as (x0, y0, x1, y1) in 112-pixel ArcFace-template
    coordinates: ``(0, 0, 112, 112)`` is the plain ArcFace crop; a wider box means a wider chip.
    The box is resampled to ``size`` x ``size`` pixels, or to ``size`` (height) x ``width``
    for a model that takes a non-square input: e.g. the SphereFace 112 x 96 (H x W) crop is
    ``InputSpec(size=112, width=96, crop=(8, 0, 104, 112))`` (``SPHEREFACE_CROP_96X112``). The
    box's width : height must equal ``width : size`` (else faces would be stretched; checked).
    The model input is ``(x / 255 * scale - mean) / std`` after channel reordering, i.e. with
    ``scale=255, mean=127.5, std=128`` the insightface convention.

    ``width`` was added after the first plugin contract (which knew square inputs only): a
    plugin that leaves it out keeps its square input unchanged.
    """

    #: Height of the input the backbone receives, in pixels (its side when square).
    size: int = 112
    #: The box the model sees, in 112-pixel ArcFace-template coordinates.
    crop: tuple[float, float, float, float] = (0.0, 0.0, 112.0, 112.0)
    #: "RGB" or "BGR": the channel order the backbone expects.
    channels: str = "RGB"
    #: Pixels are first mapped to [0, scale].
    scale: float = 255.0
    #: Per-channel mean subtracted after scaling (in the backbone's channel order).
    mean: tuple[float, float, float] = (127.5, 127.5, 127.5)
    #: Per-channel divisor applied after the mean.
    std: tuple[float, float, float] = (128.0, 128.0, 128.0)
    #: Width of the input in pixels for a non-square input; None: square (``size``).
    width: int | None = None

    def __post_init__(self) -> None:
        x0, y0, x1, y1 = self.crop
        h, w = self.shape
        if x1 <= x0 or y1 <= y0 or h < 1 or w < 1:
            raise ModelInputError(f"InputSpec: empty crop {self.crop} or input size {h} x {w}")
        if abs((x1 - x0) / (y1 - y0) - w / h) > 0.01 * w / h:
            raise ModelInputError(
                f"InputSpec: crop {self.crop} is {x1 - x0:g} x {y1 - y0:g} (W x H) but the input "
                f"is {w} x {h}; give a box with the input's aspect ratio"
            )

    @property
    def shape(self) -> tuple[int, int]:
        """(height, width) of the backbone's input."""
        return self.size, self.size if self.width is None else self.width

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> InputSpec:
        """The spec a ``to_dict`` (or a results file) holds; lists become tuples."""
        d = dict(d)
        for key in ("crop", "mean", "std"):
            d[key] = tuple(d[key])
        return cls(**d)


@dataclass
class ModelCard:
    """What a registered model is: goes into ``veilbench list models`` and every result file.

    A model is **real** (``pretrained`` and not ``demo``: a trained face recogniser whose
    accuracy can be measured) or a demo / plumbing model (random weights, a toy). ``--models
    all`` selects real models and checkpoint architectures only; a demo model runs only when
    named.
    """

    #: The registered name.
    name: str
    #: The network, in words (e.g. "iresnet50").
    architecture: str
    #: Length of the embeddings the model returns.
    embedding_size: int
    #: How the canonical crop becomes the backbone's input (applied by FaceModel).
    input: InputSpec = field(default_factory=InputSpec)
    #: Licence of the weights.
    licence: str = "unknown"
    #: Where the weights or architecture come from.
    source: str = ""
    #: The paper to cite.
    paper: str = ""
    #: True only for trained weights; a random-init model says False (and registers weights=[]).
    pretrained: bool = False
    #: The weight files: ``[{"name", "sha256", "sources"}]``.
    weights: list[dict] = field(default_factory=list)
    #: True for a trained model that is still not a face recogniser to benchmark against.
    demo: bool = False
    #: True when the embedding concatenates the features of the crop and of its mirror image.
    flip: bool = False
    #: LFW View-2 verification measured with veilbench: ``{"accuracy", "published", "pairs",
    #: "alignment", "flip", "command"}`` (balanced accuracy and the published figure, as
    #: fractions); None when not measured.
    lfw: dict[str, Any] | None = None

    @property
    def real(self) -> bool:
        """A pretrained face recogniser (not random weights, not a demo)."""
        return self.pretrained and not self.demo

    def to_dict(self) -> dict:
        d = asdict(self)
        d["input"] = self.input.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelCard:
        """A card from its ``to_dict`` (extra entries such as "training" are ignored)."""
        known = {f for f in cls.__dataclass_fields__}
        kwargs = {k: v for k, v in d.items() if k in known}
        kwargs["input"] = InputSpec.from_dict(kwargs["input"])
        return cls(**kwargs)


def in_all(entry: Any) -> bool:
    """Whether ``--models all`` selects a model registration (a registry ``Entry``).

    Real models and checkpoint architectures (``needs``) are in, an insightface pack's model
    (``pack``) once the pack is on disk; a model whose card says it is not real (random
    weights, a demo) runs only when named. A registration without a card is
    in (nothing says otherwise).
    """
    from veilbench.lazy import resolve

    meta = entry.metadata
    if meta.get("pack"):  # an insightface pack: only once it is on disk
        from veilbench.models.packs import find_pack, get_pack

        return find_pack(get_pack(meta["pack"])) is not None
    if meta.get("needs") or meta.get("card") is None:
        return True
    try:
        card = resolve(meta["card"])
        card = card if isinstance(card, ModelCard) else card()
    except Exception:  # a broken card must not hide a model: loading reports the problem
        return True
    return bool(getattr(card, "real", True))

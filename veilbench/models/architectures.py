"""The architectures a user's checkpoint can be loaded into, described without torch.

``veilbench list models`` and ``veilbench train --help`` read these records; the networks are
built (``Architecture.build``) by importing their module only then.
"""

from __future__ import annotations

from dataclasses import dataclass

from veilbench import lazy
from veilbench.errors import RegistryError
from veilbench.models.card import InputSpec, ModelCard

#: arcface_torch's input: 112 x 112 RGB ArcFace crop, ``(x - 127.5) / 127.5``.
INSIGHTFACE_INPUT = InputSpec(
    size=112,
    crop=(0.0, 0.0, 112.0, 112.0),
    channels="RGB",
    scale=255.0,
    mean=(127.5, 127.5, 127.5),
    std=(127.5, 127.5, 127.5),
)

#: facenet-pytorch's input: a 160 x 160 chip a little wider than the ArcFace crop,
#: ``(x - 127.5) / 128`` (its ``fixed_image_standardization``).
FACENET_PYTORCH_INPUT = InputSpec(
    size=160,
    crop=(-8.0, -8.0, 120.0, 120.0),
    channels="RGB",
    scale=255.0,
    mean=(127.5, 127.5, 127.5),
    std=(128.0, 128.0, 128.0),
)

_ARCFACE_PAPER = (
    "Deng et al., ArcFace: Additive Angular Margin Loss for Deep Face Recognition, 2019"
)

#: The IResNet depths (``veilbench.models.iresnet.IRESNET_LAYERS``) and timm trunks
#: (``veilbench.models.timm_backbones.TIMM_ARCHITECTURES``) by name; a test keeps them equal.
IRESNETS = ("iresnet18", "iresnet34", "iresnet50", "iresnet100")
TIMM_TRUNKS = ("resnet50", "seresnet50")


@dataclass(frozen=True)
class Architecture:
    """A buildable face-recognition architecture and the checkpoint layout it loads."""

    name: str
    builder: str  # "module:function" called with ``args``: the torch module, random weights
    upstream: str  # the checkpoint format whose key names this architecture uses
    paper: str
    embedding_size: int = 512
    input: InputSpec = INSIGHTFACE_INPUT
    ignore_prefixes: tuple[str, ...] = ()  # upstream keys that are not part of the embedder
    args: tuple[str, ...] = ()

    def build(self):  # -> torch.nn.Module (torch is imported only here)
        return lazy.load(self.builder)(*self.args)


ARCHITECTURES: dict[str, Architecture] = {
    **{
        name: Architecture(
            name,
            "veilbench.models.iresnet:iresnet",
            "insightface arcface_torch backbones/iresnet.py "
            f"'r{name.removeprefix('iresnet')}' backbone state dict",
            _ARCFACE_PAPER,
            args=(name,),
        )
        for name in IRESNETS
    },
    "mobilefacenet": Architecture(
        "mobilefacenet",
        "veilbench.models.mobilefacenet:MobileFaceNet",
        "insightface arcface_torch backbones/mobilefacenet.py 'mbf' backbone state dict",
        "Chen et al., MobileFaceNets: Efficient CNNs for Accurate Real-Time Face Verification, "
        "2018",
    ),
    **{
        name: Architecture(
            name,
            "veilbench.models.timm_backbones:timm_facenet",
            f"veilbench checkpoint (timm {name} trunk under 'body.', neck bn2/fc/features)",
            "He et al., Deep Residual Learning, 2016"
            + ("; Hu et al., Squeeze-and-Excitation Networks, 2018" if "se" in name else ""),
            args=(name,),
        )
        for name in TIMM_TRUNKS
    },
    "inception_resnet_v1": Architecture(
        "inception_resnet_v1",
        "veilbench.models.inception_resnet_v1:InceptionResnetV1",
        "facenet-pytorch models/inception_resnet_v1.py state dict (its 'logits.' classifier is "
        "ignored)",
        "Szegedy et al., Inception-v4, Inception-ResNet and the Impact of Residual Connections "
        "on Learning, 2017; Schroff et al., FaceNet, 2015",
        input=FACENET_PYTORCH_INPUT,
        ignore_prefixes=("logits.",),
    ),
}


def get_architecture(arch: str) -> Architecture:
    """The :class:`Architecture` called ``arch``, or a RegistryError listing the choices."""
    if arch not in ARCHITECTURES:
        raise RegistryError(
            f"unknown architecture {arch!r}; choose one of {', '.join(ARCHITECTURES)}"
        )
    return ARCHITECTURES[arch]


def default_card(arch: str) -> ModelCard:
    """The card of ``arch`` with random weights (no checkpoint)."""
    a = get_architecture(arch)
    return ModelCard(
        name=arch,
        architecture=arch,
        embedding_size=a.embedding_size,
        input=a.input,
        licence="n/a (random weights)",
        source=f"veilbench.models.checkpoints; loads a {a.upstream}",
        paper=a.paper,
        pretrained=False,
    )

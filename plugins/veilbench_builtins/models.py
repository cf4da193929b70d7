"""Built-in face-recognition models.

Real pretrained, available offline (weights from registry packages, sha256-checked):
``sface``, ``facenet``, ``dlib_resnet``. Real pretrained from their authors' GitHub
repositories (or ``$VEILBENCH_WEIGHTS``): ``mobilefacenet_casia``, ``mobileface_v2``.
Architectures that need a user checkpoint (``--checkpoint NAME=PATH`` or ``veilbench
train``): the paper's ``resnet50_softmax`` / ``resnet50_cosface`` / ``resnet50_arcface``,
``iresnet18/34/50/100``, ``mobilefacenet``, ``seresnet50``, ``inception_resnet_v1``; and ``onnx``
for any ArcFace-style ONNX file by path.
"""

from __future__ import annotations

from functools import partial

from veilbench import hookimpl, lazy
from veilbench import weights as W
from veilbench.models.packs import PACKS

CHECKPOINT_ARCHS = {
    "resnet50_softmax": ("resnet50", "S-ResNet: ResNet-50 trained with softmax (the paper's)"),
    "resnet50_cosface": ("resnet50", "L-ResNet: ResNet-50 trained with LMCL / CosFace"),
    "resnet50_arcface": ("resnet50", "A-ResNet: ResNet-50 trained with ArcFace"),
    "iresnet18": ("iresnet18", "IResNet-18 (arcface_torch checkpoints)"),
    "iresnet34": ("iresnet34", "IResNet-34 (arcface_torch checkpoints)"),
    "iresnet50": ("iresnet50", "IResNet-50 (arcface_torch checkpoints)"),
    "iresnet100": ("iresnet100", "IResNet-100 (arcface_torch checkpoints)"),
    "mobilefacenet": ("mobilefacenet", "MobileFaceNet (arcface_torch `mbf` checkpoints)"),
    "seresnet50": ("seresnet50", "SE-ResNet-50 (SENet) on timm"),
    "inception_resnet_v1": (
        "inception_resnet_v1",
        "Inception-ResNet-v1 (facenet-pytorch checkpoints)",
    ),
}


def _architecture(arch: str, name: str, space=None, checkpoint: str | None = None, **_):
    from veilbench.models.checkpoints import create_architecture

    return create_architecture(arch, checkpoint=checkpoint, space=space, name=name)


def _architecture_card(arch: str, name: str):
    from veilbench.models.architectures import default_card

    card = default_card(arch)
    card.name = name
    return card


def _onnx(space=None, path: str | None = None, **_):
    from veilbench.errors import ConfigError
    from veilbench.models.onnx_model import create_onnx_model

    if not path:
        raise ConfigError("model 'onnx' needs a file: --checkpoint onnx=/path/to/model.onnx")
    return create_onnx_model(path, space=space)


def _pack_model(pack: str, space=None, **_):
    from veilbench.models.packs import create_pack_model

    return create_pack_model(pack, space=space)


def _pack_card(pack: str):
    from veilbench.models.packs import pack_card

    return pack_card(pack)


#: name -> (the model factory and its card as "module:function", weight files, description).
#: Everything else about a model (licence, embedding size, input) is in its card.
PRETRAINED = {
    "sface": (
        "veilbench.models.sface:create_sface",
        "veilbench.models.cards:sface_card",
        [W.SFACE],
        "OpenCV Zoo SFace (2021dec), ONNX -> torch via onnx2torch",
    ),
    "facenet": (
        "veilbench.models.facenet:create_facenet",
        "veilbench.models.cards:facenet_card",
        [W.FACENET_KERAS],
        "FaceNet (Keras weights) in veilbench's Inception-ResNet-v1",
    ),
    "dlib_resnet": (
        "veilbench.models.dlib_resnet:create_dlib_resnet",
        "veilbench.models.cards:dlib_resnet_card",
        [W.DLIB_RESNET],
        "dlib's face-recognition ResNet, ported to torch",
    ),
    "mobilefacenet_casia": (
        "veilbench.models.mobilefacenet_casia:create_mobilefacenet_casia",
        "veilbench.models.cards:mobilefacenet_casia_card",
        [W.MOBILEFACENET_CASIA],
        "MobileFaceNet, ArcFace head on CASIA-WebFace, 112 x 96 crop (research use only)",
    ),
    "mobileface_v2": (
        "veilbench.models.mobileface_v2:create_mobileface_v2",
        "veilbench.models.cards:mobileface_v2_card",
        [W.MOBILEFACE_V2_PARAMS, W.MOBILEFACE_V2_SYMBOL],
        "MobileFace Identification V2 (MXNet, MS1M), rebuilt in torch from its symbol",
    ),
}


@hookimpl
def register_models(register):
    for name, (create, card, files, description) in PRETRAINED.items():
        register(name, lazy.factory(create), card=card, weights=files, description=description)
    for name, (arch, description) in CHECKPOINT_ARCHS.items():
        register(
            name,
            partial(_architecture, arch, name),
            card=partial(_architecture_card, arch, name),
            weights=[],
            needs="checkpoint",
            description=description + "; needs --checkpoint NAME=PATH",
        )
    for pack in PACKS.values():
        register(
            pack.model,
            partial(_pack_model, pack.name),
            card=partial(_pack_card, pack.name),
            weights=[],
            pack=pack.name,
            description=f"{pack.description}; `veilbench weights fetch {pack.name}`",
        )
    register(
        "onnx",
        _onnx,
        weights=[],
        needs="path",
        description="any ArcFace-style ONNX model by path (--checkpoint onnx=PATH)",
    )

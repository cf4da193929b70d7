"""Built-in face-recognition models.

Real pretrained, available offline (weights from registry packages, sha256-checked):
``sface``, ``facenet``, ``dlib_resnet``. Architectures that need a user checkpoint
(``--checkpoint NAME=PATH`` or ``veilbench train``): the paper's ``resnet50_softmax`` /
``resnet50_cosface`` / ``resnet50_arcface``, ``iresnet18/34/50/100``, ``mobilefacenet``,
``seresnet50``, ``inception_resnet_v1``; and ``onnx`` for any ArcFace-style ONNX file by path.
"""

from __future__ import annotations

from functools import partial

from veilbench import hookimpl
from veilbench import weights as W

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


def _pretrained(target: str):
    """A factory importing ``module:function`` only when the model is created."""

    def factory(space=None, **_):
        import importlib

        module, _, function = target.partition(":")
        return getattr(importlib.import_module(module), function)(space)

    return factory


def _architecture(arch: str, name: str, space=None, checkpoint: str | None = None, **_):
    from veilbench.models.checkpoints import create_architecture

    return create_architecture(arch, checkpoint=checkpoint, space=space, name=name)


def _architecture_card(arch: str, name: str):
    from veilbench.models.checkpoints import default_card

    card = default_card(arch)
    card.name = name
    return card


def _onnx(space=None, path: str | None = None, **_):
    from veilbench.errors import ConfigError
    from veilbench.models.onnx_model import create_onnx_model

    if not path:
        raise ConfigError("model 'onnx' needs a file: --checkpoint onnx=/path/to/model.onnx")
    return create_onnx_model(path, space=space)


@hookimpl
def register_models(register):
    register(
        "sface",
        _pretrained("veilbench.models.sface:create_sface"),
        weights=[W.SFACE],
        pretrained=True,
        embedding_size=128,
        description="OpenCV Zoo SFace (2021dec), ONNX -> torch via onnx2torch",
        licence="Apache-2.0",
        card_factory="veilbench.models.sface:sface_card",
    )
    register(
        "facenet",
        _pretrained("veilbench.models.facenet:create_facenet"),
        weights=[W.FACENET_KERAS],
        pretrained=True,
        embedding_size=128,
        description="FaceNet (Keras weights) in veilbench's Inception-ResNet-v1",
        licence="MIT",
        card_factory="veilbench.models.facenet:facenet_card",
    )
    register(
        "dlib_resnet",
        _pretrained("veilbench.models.dlib_resnet:create_dlib_resnet"),
        weights=[W.DLIB_RESNET],
        pretrained=True,
        embedding_size=128,
        description="dlib's face-recognition ResNet, ported to torch",
        licence="CC0-1.0",
        card_factory="veilbench.models.dlib_resnet:dlib_resnet_card",
    )
    for name, (arch, description) in CHECKPOINT_ARCHS.items():
        register(
            name,
            partial(_architecture, arch, name),
            weights=[],
            pretrained=False,
            architecture=arch,
            card_factory=partial(_architecture_card, arch, name),
            description=description + "; needs --checkpoint NAME=PATH",
            needs="checkpoint",
        )
    register(
        "onnx",
        _onnx,
        weights=[],
        pretrained=False,
        architecture="onnx",
        description="any ArcFace-style ONNX model by path (--checkpoint onnx=PATH)",
        needs="path",
    )

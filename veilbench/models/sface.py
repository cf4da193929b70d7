"""SFace (OpenCV Zoo, 2021dec): a real pretrained 128-d face recogniser, white-box via onnx2torch.

The file is an MXNet export of insightface's MobileNet-V1 recogniser ("fmobilenet": 14
depthwise-separable blocks, 32 -> 1024 channels, stride-1 stem for 112 px input, then
BN - dropout - FC(50176 -> 128) - BN), trained with the SFace loss. Its graph normalises
internally (``(x - 127.5) * 0.0078125``), so it takes [0, 255] pixels; RGB order (what
``cv2.FaceRecognizerSF`` feeds it via ``swapRB``) beats BGR on lfw-dev, see ``SFACE_INPUT``.
"""

from __future__ import annotations

from veilbench.models.base import FaceSpace, InputSpec, ModelCard
from veilbench.models.onnx_model import OnnxFaceModel, create_onnx_model
from veilbench.weights import SFACE, resolve

#: 112 x 112 ArcFace crop, RGB, raw [0, 255] (the graph subtracts 127.5 and scales itself).
#: Channel order measured on lfw-dev (benchmarks/clean_rank1.py protocol, 300 distractors,
#: centre crops): rank-1 0.995 with RGB vs 0.992 with BGR; cv2.FaceRecognizerSF also feeds RGB.
SFACE_INPUT = InputSpec(
    size=112, crop=(0.0, 0.0, 112.0, 112.0), channels="RGB", mean=(0.0,) * 3, std=(1.0,) * 3
)


def sface_card() -> ModelCard:
    """The model card of the OpenCV Zoo SFace recogniser."""
    return ModelCard(
        name="sface",
        architecture="mobilenet-v1 (insightface fmobilenet)",
        embedding_size=128,
        input=SFACE_INPUT,
        licence="Apache-2.0",
        source="OpenCV Zoo face_recognition_sface_2021dec",
        paper="Zhong et al., SFace: Sigmoid-Constrained Hypersphere Loss for Robust Face "
        "Recognition, IEEE TIP 2021",
        pretrained=True,
        weights=[{"name": SFACE.name, "sha256": SFACE.sha256, "sources": SFACE.describe_sources()}],
    )


def create_sface(space: FaceSpace | None = None) -> OnnxFaceModel:
    """SFace as a differentiable FaceModel (onnxruntime copy at ``.runtime``)."""
    return create_onnx_model(resolve(SFACE), card=sface_card(), space=space)

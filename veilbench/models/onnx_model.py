"""ONNX face-embedding models: onnxruntime for black-box use, onnx2torch for white-box use.

Any ArcFace-style ONNX file (insightface's ``w600k_r50.onnx`` from buffalo_l / antelopev2, the
OpenCV Zoo SFace, ...) becomes a :class:`~veilbench.models.base.FaceModel` with
:func:`create_onnx_model`. Its input convention is read from the graph as insightface's
``model_zoo/arcface_onnx.py`` does: a graph that starts with its own Sub and Mul nodes (an MXNet
export) normalises internally and takes [0, 255] pixels; any other takes
``(x - 127.5) / 127.5``; both take RGB (insightface feeds ``swapRB=True`` of a cv2 BGR image).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import onnx
import torch
import torch.nn.functional as F
from torch import nn

from veilbench.errors import ModelInputError, WeightsError
from veilbench.models.base import FaceModel, FaceSpace, InputSpec, ModelCard
from veilbench.weights import cache_dir, sha256_file


def load_onnx(path: str | os.PathLike) -> onnx.ModelProto:
    """Read an ONNX file, with initializers dropped from the graph inputs (see below)."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"ONNX model file {path} does not exist; check the path")
    try:
        model = onnx.load(str(path))
    except Exception as exc:  # protobuf raises its own DecodeError types
        raise WeightsError(
            f"ONNX model file {path} cannot be parsed ({exc}); it is partial or not ONNX: "
            "download it again"
        ) from exc
    return drop_initializer_inputs(model)


def drop_initializer_inputs(model: onnx.ModelProto) -> onnx.ModelProto:
    """Remove weights listed as graph inputs (MXNet exports do), in place.

    Left in, onnx2torch treats every weight as a model input and onnxruntime cannot fold them.
    """
    names = {init.name for init in model.graph.initializer}
    keep = [i for i in model.graph.input if i.name not in names]
    del model.graph.input[:]
    model.graph.input.extend(keep)
    return model


def _dims(value_info: onnx.ValueInfoProto) -> list[int | None]:
    """A tensor's declared shape; None for a symbolic or unknown dimension."""
    return [
        d.dim_value if d.HasField("dim_value") else None
        for d in value_info.type.tensor_type.shape.dim
    ]


def detect_input_spec(model: onnx.ModelProto) -> InputSpec:
    """The input convention of an ArcFace-style graph, detected as insightface does."""
    (inp,) = model.graph.input
    dims = _dims(inp)
    if len(dims) != 4 or dims[1] not in (3, None) or dims[2] is None or dims[2] != dims[3]:
        raise ModelInputError(
            f"ONNX model input {inp.name} has shape {dims}; veilbench needs N x 3 x H x W with a "
            "fixed square H = W. Pass create_onnx_model(..., input=InputSpec(...)) explicitly"
        )
    names = [node.name for node in model.graph.node[:8]]
    has_sub = any(n.startswith(("Sub", "_minus")) for n in names)
    has_mul = any(n.startswith(("Mul", "_mul")) for n in names)
    if has_sub and has_mul:  # MXNet model normalising inside the graph
        return InputSpec(size=dims[2], channels="RGB", mean=(0.0,) * 3, std=(1.0,) * 3)
    return InputSpec(size=dims[2], channels="RGB", mean=(127.5,) * 3, std=(127.5,) * 3)


def _providers() -> list[str]:
    import onnxruntime as ort

    available = ort.get_available_providers()
    # CUDA only where torch sees a GPU: onnxruntime-gpu on a CPU machine logs errors otherwise.
    if torch.cuda.is_available() and "CUDAExecutionProvider" in available:
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


class OnnxRuntimeEmbedder:
    """Runs an ONNX embedding model with onnxruntime on the model's own input (N x 3 x H x W)."""

    def __init__(self, path: str | os.PathLike, providers: list[str] | None = None):
        import onnxruntime as ort

        self.path = Path(path)
        model = load_onnx(self.path)
        if len(model.graph.input) != 1 or len(model.graph.output) != 1:
            raise ModelInputError(
                f"ONNX model {self.path.name} has {len(model.graph.input)} inputs and "
                f"{len(model.graph.output)} outputs; an embedding model needs one of each"
            )
        self.input_name = model.graph.input[0].name
        self.input_shape = _dims(model.graph.input[0])
        self.output_shape = _dims(model.graph.output[0])
        options = ort.SessionOptions()
        # Follow torch's thread setting, so scripts that share a machine stay within it.
        options.intra_op_num_threads = torch.get_num_threads()
        options.log_severity_level = 3
        self.session = ort.InferenceSession(
            model.SerializeToString(), options, providers=providers or _providers()
        )

    @property
    def batch_size(self) -> int | None:
        """The fixed batch size the file declares, or None when it takes any."""
        return self.input_shape[0]

    def check(self, shape: tuple[int, ...]) -> None:
        """Raise ModelInputError unless ``shape`` fits the declared input (batch aside)."""
        expected = self.input_shape[1:]
        ok = len(shape) == len(self.input_shape) and all(
            e is None or e == g for e, g in zip(expected, shape[1:], strict=True)
        )
        if not ok:
            want = " x ".join("?" if d is None else str(d) for d in expected)
            raise ModelInputError(
                f"ONNX model {self.path.name} takes input N x {want}, got {tuple(shape)}; "
                "pass canonical crops through the FaceModel, which resizes and normalises them"
            )

    def __call__(self, x: np.ndarray | torch.Tensor) -> np.ndarray:
        """Raw (unnormalised) embeddings, N x D float32."""
        if isinstance(x, torch.Tensor):
            x = x.detach().cpu().numpy()
        x = np.ascontiguousarray(x, dtype=np.float32)
        self.check(x.shape)
        if len(x) == 0:
            raise ModelInputError(f"ONNX model {self.path.name} was given an empty batch")
        step = self.batch_size or len(x)  # a batch-1-only file is run one face at a time
        if len(x) % step:
            raise ModelInputError(
                f"ONNX model {self.path.name} has a fixed batch size of {step}; got a batch of "
                f"{len(x)}"
            )
        outs = [
            self.session.run(None, {self.input_name: x[i : i + step]})[0]
            for i in range(0, len(x), step)
        ]
        return np.concatenate(outs).reshape(len(x), -1)


def onnx_to_torch(path: str | os.PathLike) -> nn.Module:
    """Convert an ONNX file to a differentiable torch module (eval mode) with onnx2torch."""
    return _to_torch(load_onnx(path), Path(path).name)


def _to_torch(model: onnx.ModelProto, label: str) -> nn.Module:
    from onnx2torch import convert

    # Declare the batch dimension symbolic, so a file exported for batch 1 batches in torch.
    model.graph.input[0].type.tensor_type.shape.dim[0].dim_param = "N"
    try:
        module = convert(model)
    except NotImplementedError as exc:
        raise ModelInputError(
            f"onnx2torch cannot convert {label} ({exc}); use the onnxruntime path "
            "(OnnxRuntimeEmbedder) for black-box evaluation of this model"
        ) from exc
    return module.eval()


class OnnxFaceModel(FaceModel):
    """A FaceModel whose backbone is an onnx2torch module, with onnxruntime at ``.runtime``."""

    def __init__(
        self, backbone: nn.Module, card: ModelCard, path: Path, space: FaceSpace | None = None
    ):
        super().__init__(backbone, card, space)
        self.onnx_path = path
        self._runtime: OnnxRuntimeEmbedder | None = None

    @property
    def runtime(self) -> OnnxRuntimeEmbedder:
        """The onnxruntime session of the same file (created on first use)."""
        if self._runtime is None:
            self._runtime = OnnxRuntimeEmbedder(self.onnx_path)
        return self._runtime

    @torch.no_grad()
    def forward_runtime(self, x: torch.Tensor) -> torch.Tensor:
        """Like ``forward`` (canonical crops -> unit embeddings) but through onnxruntime."""
        out = torch.from_numpy(self.runtime(self.preprocess(x.float())))
        return F.normalize(out, dim=1).to(x.device)


def create_onnx_model(
    path: str | os.PathLike,
    input: InputSpec | None = None,
    name: str | None = None,
    space: FaceSpace | None = None,
    card: ModelCard | None = None,
) -> OnnxFaceModel:
    """Any ArcFace-style ONNX file -> a frozen, white-box FaceModel (onnxruntime at .runtime).

    ``input`` defaults to the convention detected from the graph (:func:`detect_input_spec`);
    ``card`` (whose own ``input`` then applies) replaces the generic card built from the file.
    """
    path = Path(path)
    model = load_onnx(path)
    spec = input or detect_input_spec(model)
    if card is None:
        out = _dims(model.graph.output[0])
        if len(out) < 2 or out[-1] is None:
            raise ModelInputError(
                f"ONNX model {path.name} declares output shape {out}; cannot tell its embedding "
                "size: pass card=ModelCard(...)"
            )
        card = ModelCard(
            name=name or path.stem,
            architecture="onnx",
            embedding_size=out[-1],
            input=spec,
            source=str(path),
            pretrained=True,
            weights=[{"name": path.name, "sha256": sha256_file(path), "sources": [str(path)]}],
        )
    backbone = _to_torch(model, path.name)
    # Pretrained recognisers are attacked and evaluated, not trained: no weight gradients.
    backbone.requires_grad_(False)
    face_model = OnnxFaceModel(backbone, card, path, space).eval()
    check_conversion(face_model)
    return face_model


#: The torch conversion must give embeddings within this cosine of onnxruntime's.
CONVERSION_TOLERANCE = 1e-4


def _check_crops(space: FaceSpace, n: int = 3) -> torch.Tensor:
    """Fixed face-like crops: a smooth random field per crop (seeded), in [0, 255]."""
    g = torch.Generator().manual_seed(0)
    coarse = torch.rand(n, 3, 9, 9, generator=g) * 255
    return F.interpolate(coarse, size=(space.size, space.size), mode="bicubic").clamp(0, 255)


def check_conversion(model: OnnxFaceModel) -> None:
    """Refuse a model whose torch conversion disagrees with onnxruntime (checked once per file).

    The outcome is recorded by the file's sha256 in ``$VEILBENCH_CACHE/onnx-checks.json``, so a
    file is run through onnxruntime on its first load only.
    """
    from veilbench.files import write_text_atomic

    record = cache_dir() / "onnx-checks.json"
    digest = sha256_file(model.onnx_path)
    try:
        checked = json.loads(record.read_text())
    except (OSError, ValueError):  # none yet, or damaged: check again
        checked = {}
    if digest not in checked:
        x = _check_crops(model.space)
        with torch.no_grad():
            cos = (model(x) * model.forward_runtime(x)).sum(1)
        checked[digest] = {"file": model.onnx_path.name, "min_cosine": float(cos.min())}
        record.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(record, json.dumps(checked, indent=1))
    worst = checked[digest]["min_cosine"]
    if worst < 1 - CONVERSION_TOLERANCE:
        raise WeightsError(
            f"the torch conversion of {model.onnx_path.name} disagrees with onnxruntime "
            f"(cosine {worst:.5f} on check crops, need >= {1 - CONVERSION_TOLERANCE}); "
            "refusing it: evaluate it black-box with OnnxRuntimeEmbedder instead"
        )

"""SSIM / PSNR against skimage, and LPIPS (AlexNet) against the ``lpips`` package, on real faces."""

from __future__ import annotations

import importlib.util
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageFilter
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from veilbench.errors import DataError, ModelInputError, WeightsError
from veilbench.evaluation.image_metrics import psnr, ssim
from veilbench.evaluation.lpips_alex import (
    LPIPSAlex,
    get_lpips,
    load_ckpt,
    lpips_distance,
)
from veilbench.weights import LPIPS_ALEX, resolve

torch.set_num_threads(1)

PHOTOS = (
    "George_W_Bush/George_W_Bush_0001.jpg",
    "George_W_Bush/George_W_Bush_0002.jpg",
    "Serena_Williams/Serena_Williams_0001.jpg",
)
# An original and what protections / recoveries typically do to it.
VARIANTS = ("same", "noise", "blur", "blend10", "blend30", "same_person", "other_person")


def _load(root: Path, rel: str) -> np.ndarray:
    return np.asarray(Image.open(root / rel).convert("RGB"), dtype=np.float64)


@pytest.fixture(scope="module")
def pairs(lfw_dev: Path) -> tuple[torch.Tensor, torch.Tensor]:
    """(originals, variants): 7 x 3 x 250 x 250 float32 batches in [0, 255]."""
    bush, bush2, serena = (_load(lfw_dev, p) for p in PHOTOS)
    rng = np.random.default_rng(0)
    blurred = Image.fromarray(bush.astype(np.uint8)).filter(ImageFilter.GaussianBlur(2))
    variants = [
        bush,
        np.clip(bush + rng.normal(0.0, 8.0, bush.shape), 0, 255),
        np.asarray(blurred, dtype=np.float64),
        0.9 * bush + 0.1 * serena,
        0.7 * bush + 0.3 * serena,
        bush2,
        serena,
    ]
    return _nchw([bush] * len(variants)), _nchw(variants)


def _nchw(images: list[np.ndarray]) -> torch.Tensor:
    return torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float()


def _hwc64(t: torch.Tensor) -> np.ndarray:
    return t.permute(1, 2, 0).double().numpy()


def test_ssim_matches_skimage_on_real_faces(pairs: tuple[torch.Tensor, torch.Tensor]) -> None:
    a, b = pairs
    a, b = a[..., 20:230, 10:240], b[..., 20:230, 10:240]  # non-square: H and W not swapped
    got = ssim(a, b)
    want = [
        structural_similarity(_hwc64(x), _hwc64(y), channel_axis=-1, data_range=255)
        for x, y in zip(a, b, strict=True)
    ]
    assert got.shape == (len(VARIANTS),)
    np.testing.assert_allclose(got.numpy(), want, rtol=0, atol=1e-6)
    assert got[0] == pytest.approx(1.0)
    # Ordering sanity: a light blend is closer than a heavy one, which is closer than a stranger.
    idx = {k: i for i, k in enumerate(VARIANTS)}
    assert got[idx["blend10"]] > got[idx["blend30"]] > got[idx["other_person"]]


def test_ssim_data_range_matches_skimage(pairs: tuple[torch.Tensor, torch.Tensor]) -> None:
    a, b = (t[1:3] / 255.0 for t in pairs)
    got = ssim(a, b, data_range=1.0)
    want = [
        structural_similarity(_hwc64(x), _hwc64(y), channel_axis=-1, data_range=1.0)
        for x, y in zip(a, b, strict=True)
    ]
    np.testing.assert_allclose(got.numpy(), want, rtol=0, atol=1e-6)


def test_psnr_matches_skimage_and_is_inf_for_identical(
    pairs: tuple[torch.Tensor, torch.Tensor],
) -> None:
    a, b = pairs
    got = psnr(a, b)
    assert got.shape == (len(VARIANTS),)
    assert torch.isposinf(got[0])  # identical: +inf, not NaN
    want = [
        peak_signal_noise_ratio(x.double().numpy(), y.double().numpy(), data_range=255)
        for x, y in zip(a[1:], b[1:], strict=True)
    ]
    np.testing.assert_allclose(got[1:].numpy(), want, rtol=1e-10)


def test_metrics_reject_mismatched_or_tiny_images() -> None:
    x = torch.zeros(2, 3, 32, 32)
    with pytest.raises(DataError, match="same shape"):
        ssim(x, torch.zeros(2, 3, 32, 31))
    with pytest.raises(DataError, match="same shape"):
        psnr(x, x[0])
    with pytest.raises(DataError, match="at least 7"):
        ssim(x[..., :6, :], x[..., :6, :])


@pytest.fixture(scope="module")
def lpips_ckpt() -> Path:
    try:
        return resolve(LPIPS_ALEX)
    except WeightsError as exc:
        pytest.skip(f"LPIPS weights unavailable: {exc}")


def test_ckpt_linear_layers_equal_lpips_wheel(lpips_ckpt: Path) -> None:
    ours = load_ckpt(lpips_ckpt)
    spec = importlib.util.find_spec("lpips")  # found, not imported: importing it is slow
    assert spec is not None and spec.origin is not None
    wheel = Path(spec.origin).parent / "weights" / "v0.1" / "alex.pth"
    theirs = torch.load(wheel, map_location="cpu")
    for i in range(5):
        w, t = ours[f"lins.{i}.weight"], theirs[f"lin{i}.model.1.weight"]
        assert w.shape == t.shape and w.numpy().tobytes() == t.numpy().tobytes()


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::UserWarning")  # torchvision's `pretrained=` deprecation
def test_lpips_equals_lpips_package(
    pairs: tuple[torch.Tensor, torch.Tensor], lpips_ckpt: Path
) -> None:
    import lpips  # here, not at the top: it imports torchvision (seconds) for this test only

    a, b = pairs
    # pnet_rand=True: the package builds an untrained AlexNet (no download); give it our convs.
    ref = lpips.LPIPS(net="alex", pnet_rand=True, verbose=False)
    slices = {"0": "slice1", "3": "slice2", "6": "slice3", "8": "slice4", "10": "slice5"}
    convs = {
        f"net.{slices[k.split('.')[1]]}.{k.split('.', 1)[1]}": v
        for k, v in load_ckpt(lpips_ckpt).items()
        if k.startswith("features.")
    }
    result = ref.load_state_dict(convs, strict=False)
    assert not result.unexpected_keys and not any(k.startswith("net.") for k in result.missing_keys)
    with torch.no_grad():
        want = ref(a / 127.5 - 1, b / 127.5 - 1).flatten()
    got = lpips_distance(a, b)
    np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=0, atol=1e-4)

    idx = {k: i for i, k in enumerate(VARIANTS)}
    assert got[idx["same"]] == 0.0
    assert 0 < got[idx["blend10"]] < got[idx["blend30"]] < got[idx["other_person"]]


@pytest.mark.slow
def test_lpips_batching_gradients_and_no_download(
    pairs: tuple[torch.Tensor, torch.Tensor], lpips_ckpt: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_network(*args: object, **kwargs: object) -> None:
        raise AssertionError("LPIPSAlex tried to download")

    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", no_network)
    model = LPIPSAlex(lpips_ckpt)
    a, b = pairs
    a = a[:, :, :144, :144].clone()  # canonical-crop size
    b = b[:, :, :144, :144].clone()
    # Chunks of 3 over 7 pairs give the same numbers as one pass.
    with torch.no_grad():
        whole = model(a, b)
    np.testing.assert_allclose(lpips_distance(a, b, batch_size=3).numpy(), whole.numpy(), atol=1e-6)
    assert get_lpips("cpu") is get_lpips(torch.device("cpu"))

    # The module is frozen but differentiable in its inputs (for LPIPS-bounded attacks).
    b.requires_grad_(True)
    model(a, b).sum().backward()
    assert b.grad is not None and b.grad[1:].abs().sum() > 0
    assert all(not p.requires_grad for p in model.parameters())

    with pytest.raises(ModelInputError, match="at least 31"):
        model(a[..., :30, :30], b[..., :30, :30])
    with pytest.raises(ModelInputError, match="same shape"):
        lpips_distance(a, b[:-1])


def test_corrupt_ckpt_is_a_weights_error(tmp_path: Path) -> None:
    bad = tmp_path / "lpips_alexnet.ckpt"
    bad.write_bytes(b"cos\nsystem\n(S'echo hi'\ntR.")  # a pickle that would run code
    with pytest.raises(WeightsError, match="refusing to load os.system"):
        load_ckpt(bad)

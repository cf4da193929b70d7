"""FR architectures: shapes and gradients (random-weight plumbing) and upstream checkpoint loading.

The upstream key lists below are written out from insightface's module definitions
(``recognition/arcface_torch/backbones/iresnet.py`` and ``mobilefacenet.py``), independently
of veilbench's modules, so a real ``arcface_torch`` ``backbone.pth`` is known to load.
"""

from __future__ import annotations

import pytest
import torch

from veilbench.errors import RegistryError, WeightsError
from veilbench.models.checkpoints import (
    ARCHITECTURES,
    INSIGHTFACE_INPUT,
    create_architecture,
    load_checkpoint,
    load_strict,
)
from veilbench.models.inception_resnet_v1 import InceptionResnetV1
from veilbench.models.iresnet import iresnet
from veilbench.models.mobilefacenet import MobileFaceNet

torch.set_num_threads(1)


def _bn(prefix: str, c: int, out: dict) -> None:
    for name in ("weight", "bias", "running_mean", "running_var"):
        out[f"{prefix}.{name}"] = (c,)
    out[f"{prefix}.num_batches_tracked"] = ()


def upstream_iresnet_shapes(layers: tuple[int, int, int, int]) -> dict[str, tuple[int, ...]]:
    """Key -> shape of arcface_torch's IResNet (IBasicBlock, fc over 512 x 7 x 7, 512-d)."""
    s: dict[str, tuple[int, ...]] = {"conv1.weight": (64, 3, 3, 3)}
    _bn("bn1", 64, s)
    s["prelu.weight"] = (64,)
    cin = 64
    for i, (planes, n) in enumerate(zip((64, 128, 256, 512), layers, strict=True), start=1):
        for j in range(n):
            p = f"layer{i}.{j}"
            c = cin if j == 0 else planes
            _bn(f"{p}.bn1", c, s)
            s[f"{p}.conv1.weight"] = (planes, c, 3, 3)
            _bn(f"{p}.bn2", planes, s)
            s[f"{p}.prelu.weight"] = (planes,)
            s[f"{p}.conv2.weight"] = (planes, planes, 3, 3)
            _bn(f"{p}.bn3", planes, s)
            if j == 0:  # every stage starts with a stride-2 block, hence a downsample
                s[f"{p}.downsample.0.weight"] = (planes, c, 1, 1)
                _bn(f"{p}.downsample.1", planes, s)
        cin = planes
    _bn("bn2", 512, s)
    s["fc.weight"] = (512, 512 * 7 * 7)
    s["fc.bias"] = (512,)
    _bn("features", 512, s)
    return s


def upstream_mbf_shapes() -> dict[str, tuple[int, ...]]:
    """Key -> shape of arcface_torch's ``mbf`` (blocks (1, 4, 6, 2), scale 2, 512-d)."""
    s: dict[str, tuple[int, ...]] = {}

    def conv_block(p: str, cin: int, cout: int, k: int, groups: int = 1) -> None:
        s[f"{p}.layers.0.weight"] = (cout, cin // groups, k, k)
        _bn(f"{p}.layers.1", cout, s)
        s[f"{p}.layers.2.weight"] = (cout,)

    def linear_block(p: str, cin: int, cout: int, k: int = 1, groups: int = 1) -> None:
        s[f"{p}.layers.0.weight"] = (cout, cin // groups, k, k)
        _bn(f"{p}.layers.1", cout, s)

    def depthwise(p: str, cin: int, cout: int, groups: int) -> None:
        conv_block(f"{p}.layers.0", cin, groups, 1)
        conv_block(f"{p}.layers.1", groups, groups, 3, groups=groups)
        linear_block(f"{p}.layers.2", groups, cout)

    def residual(p: str, c: int, n: int, groups: int) -> None:
        for j in range(n):
            depthwise(f"{p}.layers.{j}", c, c, groups)

    conv_block("layers.0", 3, 128, 3)
    conv_block("layers.1", 128, 128, 3, groups=64)
    depthwise("layers.2", 128, 128, 128)
    residual("layers.3", 128, 4, 128)
    depthwise("layers.4", 128, 256, 256)
    residual("layers.5", 256, 6, 256)
    depthwise("layers.6", 256, 256, 512)
    residual("layers.7", 256, 2, 256)
    conv_block("conv_sep", 256, 512, 1)
    linear_block("features.layers.0", 512, 512, k=7, groups=512)
    s["features.layers.2.weight"] = (512, 512)
    _bn("features.layers.3", 512, s)
    return s


def _random_state(shapes: dict[str, tuple[int, ...]]) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    return {
        k: torch.tensor(7) if k.endswith("num_batches_tracked") else torch.rand(v, generator=gen)
        for k, v in shapes.items()
    }


# iresnet34/50/100 differ from iresnet18 only in depth, checked by the key-list tests below.
@pytest.mark.parametrize(
    "arch", sorted(set(ARCHITECTURES) - {"iresnet34", "iresnet50", "iresnet100"})
)
def test_random_weight_plumbing_embeddings_and_input_gradients(arch: str) -> None:
    model = create_architecture(arch)
    assert model.card.pretrained is False
    if arch != "inception_resnet_v1":  # facenet-pytorch's own 160 px chip, checked below
        assert model.card.input == INSIGHTFACE_INPUT
    S = model.space.size
    x = (torch.rand(2, 3, S, S, generator=torch.Generator().manual_seed(1)) * 255).requires_grad_()
    emb = model(x)
    assert emb.shape == (2, 512)
    assert torch.allclose(emb.norm(dim=1), torch.ones(2), atol=1e-5)
    emb[0].sum().backward()
    assert torch.isfinite(x.grad).all()
    assert x.grad.abs().sum() > 0


def test_facenet_pytorch_input_is_its_fixed_standardisation_on_160_px() -> None:
    spec = ARCHITECTURES["inception_resnet_v1"].input
    assert (spec.size, spec.scale, spec.mean, spec.std) == (160, 255.0, (127.5,) * 3, (128.0,) * 3)


def test_facenet_pytorch_checkpoint_with_classifier_and_no_counters_loads(tmp_path) -> None:
    with torch.device("meta"):
        shapes = {k: tuple(v.shape) for k, v in InceptionResnetV1().state_dict().items()}
    state = _random_state({k: v for k, v in shapes.items() if not k.endswith("tracked")})
    state["logits.weight"] = torch.zeros(8631, 512)  # VGGFace2 classifier, not the embedder
    path = tmp_path / "20180402-114759-vggface2.pt"
    torch.save(state, path)
    model = create_architecture("inception_resnet_v1", checkpoint=path, name="facenet_vgg")
    assert model.card.name == "facenet_vgg"
    assert torch.equal(model.backbone.last_bn.running_var, state["last_bn.running_var"])


def test_insightface_normalisation_maps_pixels_to_minus_one_one() -> None:
    model = create_architecture("mobilefacenet")
    S = model.space.size
    black, white = torch.zeros(1, 3, S, S), torch.full((1, 3, S, S), 255.0)
    assert torch.allclose(model.preprocess(black), torch.full((1, 3, 112, 112), -1.0))
    assert torch.allclose(model.preprocess(white), torch.full((1, 3, 112, 112), 1.0))


@pytest.fixture(scope="module")
def upstream_r50() -> dict[str, torch.Tensor]:
    """A state dict with arcface_torch r50's keys and shapes (random values)."""
    return _random_state(upstream_iresnet_shapes((3, 4, 14, 3)))


@pytest.fixture(scope="module")
def iresnet50_backbone() -> torch.nn.Module:
    """A random-weight iresnet50, built once for the load tests."""
    return iresnet("iresnet50")


def test_upstream_iresnet50_state_dict_loads_strictly(upstream_r50, iresnet50_backbone) -> None:
    state, backbone = upstream_r50, iresnet50_backbone
    load_strict(backbone, state, "iresnet50", "upstream-r50")
    assert torch.equal(
        backbone.state_dict()["layer3.13.conv2.weight"], state["layer3.13.conv2.weight"]
    )
    assert torch.equal(backbone.features.running_mean, state["features.running_mean"])


def test_upstream_key_lists_match_every_iresnet_depth() -> None:
    for name, layers in {
        "iresnet18": (2, 2, 2, 2),
        "iresnet34": (3, 4, 6, 3),
        "iresnet100": (3, 13, 30, 3),
    }.items():
        with torch.device("meta"):
            backbone = iresnet(name)
        got = {k: tuple(v.shape) for k, v in backbone.state_dict().items()}
        assert got == upstream_iresnet_shapes(layers), name


def test_corrupted_iresnet50_state_dict_names_missing_key_and_format(
    upstream_r50, iresnet50_backbone
) -> None:
    state = {k: v for k, v in upstream_r50.items() if k != "layer2.3.bn2.running_var"}
    with pytest.raises(WeightsError) as err:
        load_strict(iresnet50_backbone, state, "iresnet50", "r50.pth")
    msg = str(err.value)
    assert "missing keys: layer2.3.bn2.running_var" in msg
    assert "arcface_torch backbones/iresnet.py 'r50'" in msg


def test_upstream_mbf_checkpoint_file_with_module_prefix_loads(tmp_path) -> None:
    state = _random_state(upstream_mbf_shapes())
    path = tmp_path / "backbone.pth"
    torch.save({f"module.{k}": v for k, v in state.items()}, path)  # as saved under DDP
    model = create_architecture("mobilefacenet", checkpoint=path)
    assert model.card.pretrained is True
    assert model.card.name == "mobilefacenet:backbone"
    assert len(model.card.weights[0]["sha256"]) == 64
    assert torch.equal(model.backbone.conv_sep.layers[0].weight, state["conv_sep.layers.0.weight"])


def test_arcface_torch_resume_file_is_read(tmp_path) -> None:
    state = _random_state(upstream_mbf_shapes())
    path = tmp_path / "checkpoint_gpu_0.pt"
    torch.save({"epoch": 3, "state_dict_backbone": state, "state_dict_softmax_fc": {}}, path)
    loaded, card = load_checkpoint(path)
    assert card is None
    assert loaded.keys() == state.keys()


def test_checkpoint_of_another_architecture_says_which(tmp_path) -> None:
    path = tmp_path / "mbf.pth"
    torch.save(_random_state(upstream_mbf_shapes()), path)
    with pytest.raises(WeightsError, match="its keys match architecture 'mobilefacenet'"):
        create_architecture("iresnet18", checkpoint=path)


def test_unreadable_checkpoints_give_clear_errors(tmp_path) -> None:
    with pytest.raises(WeightsError, match="does not exist"):
        load_checkpoint(tmp_path / "nope.pth")
    truncated = tmp_path / "cut.pth"
    torch.save(_random_state({"w": (10,)}), truncated)
    truncated.write_bytes(truncated.read_bytes()[:50])
    with pytest.raises(WeightsError, match="truncated"):
        load_checkpoint(truncated)
    pickled = tmp_path / "whole.pth"
    torch.save(MobileFaceNet(), pickled)
    with pytest.raises(WeightsError, match="state_dict"):
        load_checkpoint(pickled)


def test_unknown_architecture_lists_choices() -> None:
    with pytest.raises(RegistryError, match="iresnet50"):
        create_architecture("resnet51")


def test_torch_free_architecture_names_match_their_modules():
    from veilbench.models.architectures import IRESNETS, TIMM_TRUNKS
    from veilbench.models.iresnet import IRESNET_LAYERS
    from veilbench.models.timm_backbones import TIMM_ARCHITECTURES

    assert IRESNETS == tuple(IRESNET_LAYERS) and TIMM_TRUNKS == tuple(TIMM_ARCHITECTURES)

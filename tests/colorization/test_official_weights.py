"""``tinct import-weights``: the released weights of ECCV16, SIGGRAPH17 and InstColorization as tinct models.

The released files are not downloaded: each test builds a state dict with the ORIGINAL key names and shapes
(width 1.0) and random values, converts it, and compares the tinct model with a minimal re-implementation of
the original forward pass written here with ``F.conv2d`` & co. on the original keys. The architectures are
those of richzhang/colorization ``colorizers/eccv16.py`` and ``colorizers/siggraph17.py`` and of
ericsujw/InstColorization ``models/networks.py`` (SIGGRAPHGenerator, InstanceGenerator, FusionGenerator,
WeightGenerator), ``models/fusion_model.py`` (G, GF, GComp) and ``image_util.py`` (``get_box_info``).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor

from tinct.cli.main import main
from tinct.color.quantize import ab_bins
from tinct.colorization import official
from tinct.colorization.instance import crop_instances
from tinct.colorization.official import RELEASES, check_release, file_sha256, import_weights
from tinct.colorization.pretrained import load_colorizer_file
from tinct.core.exceptions import ConfigError, DataError
from tinct.engine.config import config_from_dict

# -- the original architectures: module name -> its Sequential's layers, in order (the key index) ---------

Layer = tuple[Any, ...]


def conv(c_in: int, c_out: int, k: int = 3, stride: int = 1, pad: int = 1, dil: int = 1) -> Layer:
    return ("conv", c_in, c_out, k, stride, pad, dil)


def up(c_in: int, c_out: int) -> Layer:
    return ("convT", c_in, c_out)


RELU, LRELU, TANH = ("relu",), ("lrelu",), ("tanh",)


def bn(c: int) -> Layer:
    return ("bn", c)


def block(c_in: int, c_out: int, n: int, last_stride: int = 1, dil: int = 1) -> list[Layer]:
    layers: list[Layer] = []
    for i in range(n):
        layers += [
            conv(c_in if i == 0 else c_out, c_out, 3, last_stride if i == n - 1 else 1, dil, dil),
            RELU,
        ]
    return [*layers, bn(c_out)]


def eccv16_arch(w: float = 1.0) -> dict[str, list[Layer]]:
    """colorizers/eccv16.py, ECCVGenerator (model_out is a bare Conv2d: key model_out.weight)."""
    c = [int(n * w) for n in (64, 128, 256, 512)]
    return {
        "model1": block(1, c[0], 2, 2),
        "model2": block(c[0], c[1], 2, 2),
        "model3": block(c[1], c[2], 3, 2),
        "model4": block(c[2], c[3], 3),
        "model5": block(c[3], c[3], 3, 1, 2),
        "model6": block(c[3], c[3], 3, 1, 2),
        "model7": block(c[3], c[3], 3),
        "model8": [
            up(c[3], c[2]),
            RELU,
            conv(c[2], c[2]),
            RELU,
            conv(c[2], c[2]),
            RELU,
            conv(c[2], 313, 1, 1, 0),
        ],
    }


def siggraph_arch() -> dict[str, list[Layer]]:
    """colorizers/siggraph17.py, SIGGRAPHGenerator (= InstColorization's SIGGRAPHGenerator / InstanceGenerator)."""
    return {
        "model1": block(4, 64, 2),
        "model2": block(64, 128, 2),
        "model3": block(128, 256, 3),
        "model4": block(256, 512, 3),
        "model5": block(512, 512, 3, 1, 2),
        "model6": block(512, 512, 3, 1, 2),
        "model7": block(512, 512, 3),
        "model8up": [up(512, 256)],
        "model3short8": [conv(256, 256)],
        "model8": [RELU, *block(256, 256, 2)],
        "model9up": [up(256, 128)],
        "model2short9": [conv(128, 128)],
        "model9": [RELU, *block(128, 128, 1)],
        "model10up": [up(128, 128)],
        "model1short10": [conv(64, 128)],
        "model10": [RELU, conv(128, 128), LRELU],
        "model_class": [conv(256, 529, 1, 1, 0)],
        "model_out": [conv(128, 2, 1, 1, 0), TANH],
    }


# FusionGenerator: the weight generator after each of the 13 stages and the box_info (0: full size, 1: /2,
# 2: /4, 3: /8) it gets.
FUSION = (
    ("weight_layer", 64, "conv1_2", 0),
    ("weight_layer2", 128, "conv2_2", 1),
    ("weight_layer3", 256, "conv3_3", 2),
    ("weight_layer4", 512, "conv4_3", 3),
    ("weight_layer5", 512, "conv5_3", 3),
    ("weight_layer6", 512, "conv6_3", 3),
    ("weight_layer7", 512, "conv7_3", 3),
    ("weight_layer8_1", 256, "conv8_up", 2),
    ("weight_layer8_2", 256, "conv8_3", 2),
    ("weight_layer9_1", 128, "conv9_up", 1),
    ("weight_layer9_2", 128, "conv9_3", 1),
    ("weight_layer10_1", 128, "conv10_up", 0),
    ("weight_layer10_2", 128, "conv10_2", 0),
)


def fusion_arch() -> dict[str, list[Layer]]:
    """models/networks.py, FusionGenerator: SIGGRAPHGenerator + WeightGenerator(C) per stage (+ the unused
    weight_layerout = WeightGenerator(2)); each WeightGenerator's convolution stacks end in a ReLU."""
    arch = siggraph_arch()
    for name, c, _, _ in (*FUSION, ("weight_layerout", 2, "", 0)):
        for part in ("simple_instance_conv", "simple_bg_conv"):
            arch[f"{name}.{part}"] = [conv(c, 16), RELU, conv(16, 16), RELU, conv(16, 1), RELU]
    return arch


def random_state(arch: dict[str, list[Layer]], seed: int) -> dict[str, Tensor]:
    g = torch.Generator().manual_seed(seed)
    state: dict[str, Tensor] = {}
    for name, layers in arch.items():
        for i, layer in enumerate(layers):
            key = f"{name}.{i}"
            if layer[0] in ("conv", "convT"):
                c_in, c_out = layer[1], layer[2]
                k = layer[3] if layer[0] == "conv" else 4
                shape = (c_out, c_in, k, k) if layer[0] == "conv" else (c_in, c_out, k, k)
                fan = c_in * k * k / (1 if layer[0] == "conv" else 4)
                state[f"{key}.weight"] = torch.randn(shape, generator=g) * math.sqrt(2.0 / fan)
                state[f"{key}.bias"] = torch.randn(c_out, generator=g) * 0.1
            elif layer[0] == "bn":
                c = layer[1]
                state[f"{key}.weight"] = 1.0 + 0.1 * torch.randn(c, generator=g)
                state[f"{key}.bias"] = 0.1 * torch.randn(c, generator=g)
                state[f"{key}.running_mean"] = 0.1 * torch.randn(c, generator=g)
                state[f"{key}.running_var"] = 0.5 + torch.rand(c, generator=g)
                state[f"{key}.num_batches_tracked"] = torch.tensor(1000)
    return state


def run(state: dict[str, Tensor], arch: dict[str, list[Layer]], name: str, x: Tensor) -> Tensor:
    """One of the original's Sequentials, layer by layer on its keys."""
    for i, layer in enumerate(arch[name]):
        key = f"{name}.{i}"
        if layer[0] == "conv":
            _, _, _, _, stride, pad, dil = layer
            x = F.conv2d(x, state[f"{key}.weight"], state[f"{key}.bias"], stride, pad, dil)
        elif layer[0] == "convT":
            x = F.conv_transpose2d(x, state[f"{key}.weight"], state[f"{key}.bias"], stride=2, padding=1)
        elif layer[0] == "bn":
            w, b = state[f"{key}.weight"], state[f"{key}.bias"]
            rm, rv = state[f"{key}.running_mean"], state[f"{key}.running_var"]
            x = F.batch_norm(x, rm, rv, w, b, training=False, eps=1e-5)
        elif layer[0] == "relu":
            # nn.ReLU(True) as the original: in place, so the ReLU heading model8 / model9 / model10 also
            # rectifies the conv8_up / conv9_up / conv10_up tensor it is handed, which InstanceGenerator
            # then returns in its feature_map.
            x = F.relu(x, inplace=True)
        elif layer[0] == "lrelu":
            x = F.leaky_relu(x, 0.2)
        else:
            x = torch.tanh(x)
    return x


# -- the original forward passes ----------------------------------------------------------------------------


def eccv16_forward(state: dict[str, Tensor], l_norm: Tensor) -> Tensor:
    """ECCVGenerator.forward after normalize_l: model1-8, softmax, model_out (bins / 110), upsample4, x 110."""
    arch = eccv16_arch()
    x = l_norm
    for i in range(1, 9):
        x = run(state, arch, f"model{i}", x)
    out = F.conv2d(torch.softmax(x, dim=1), state["model_out.weight"])
    return F.interpolate(out, scale_factor=4, mode="bilinear", align_corners=False) * 110.0


Fuse = Callable[[str, Tensor], Tensor]


def siggraph_forward(state: dict[str, Tensor], x: Tensor, fuse: Fuse | None = None) -> tuple[Tensor, dict]:
    """SIGGRAPHGenerator.forward on its 4-channel input (FusionGenerator's when ``fuse`` is given): ab
    (regression x 110) and the 13 stage features (InstanceGenerator's feature_map)."""
    arch = siggraph_arch()
    stages: dict[str, Tensor] = {}

    def f(name: str, t: Tensor) -> Tensor:
        t = fuse(name, t) if fuse is not None else t
        stages[name] = t
        return t

    def r(name: str, t: Tensor) -> Tensor:
        return run(state, arch, name, t)

    c1 = f("conv1_2", r("model1", x))
    c2 = f("conv2_2", r("model2", c1[:, :, ::2, ::2]))
    c3 = f("conv3_3", r("model3", c2[:, :, ::2, ::2]))
    c = f("conv4_3", r("model4", c3[:, :, ::2, ::2]))
    c = f("conv5_3", r("model5", c))
    c = f("conv6_3", r("model6", c))
    c = f("conv7_3", r("model7", c))
    c = f("conv8_up", r("model8up", c) + r("model3short8", c3))
    c = f("conv8_3", r("model8", c))
    c = f("conv9_up", r("model9up", c) + r("model2short9", c2))
    c = f("conv9_3", r("model9", c))
    c = f("conv10_up", r("model10up", c) + r("model1short10", c1))
    c = f("conv10_2", r("model10", c))
    return r("model_out", c) * 110.0, stages


def get_box_info(box: list[float], original_shape: tuple[int, int], final_size: int) -> list[int]:
    """image_util.py get_box_info: original_shape is PIL's (W, H); returns [L, R, T, B, width, height]."""
    sx = int(box[0] / original_shape[0] * final_size)
    sy = int(box[1] / original_shape[1] * final_size)
    ex = int(box[2] / original_shape[0] * final_size)
    ey = int(box[3] / original_shape[1] * final_size)
    rh, rw = ex - sx, ey - sy
    if rh < 1:
        if final_size - ex > 1:
            ex += 1
        else:
            sx -= 1
        rh = 1
    if rw < 1:
        if final_size - ey > 1:
            ey += 1
        else:
            sy -= 1
        rw = 1
    return [sx, final_size - ex, sy, final_size - ey, rh, rw]


def weight_generator(state: dict, name: str, inst: Tensor, bg: Tensor, box_info: list[list[int]]) -> Tensor:
    """WeightGenerator.forward: instance logits and features resized into their box and zero-padded, the
    background logit + (1 - union of the boxes) x 1e5, softmax over instances + background."""
    arch = fusion_arch()

    def resize_and_pad(t: Tensor, info: list[int]) -> Tensor:
        t = F.interpolate(t, size=(info[5], info[4]), mode="bilinear", align_corners=False)
        return F.pad(t, (info[0], info[1], info[2], info[3]), "constant", 0)

    masks, features = [], []
    union = torch.zeros_like(bg)[:1, :1]
    for i, info in enumerate(box_info):
        crop = inst[i : i + 1]
        masks.append(resize_and_pad(run(state, arch, f"{name}.simple_instance_conv", crop), info))
        features.append(resize_and_pad(crop, info))
        mask = torch.zeros_like(bg)[:1, :1]
        mask[0, 0, info[2] : info[2] + info[5], info[0] : info[0] + info[4]] = 1.0
        union = torch.clamp(union + mask, 0.0, 1.0)
    masks.append(run(state, arch, f"{name}.simple_bg_conv", bg) + (1 - union) * 100000.0)
    weights = torch.softmax(torch.cat(masks, 1), 1)
    features.append(bg)
    return torch.sum(torch.cat(features, 0) * weights.permute(1, 0, 2, 3), 0, keepdim=True)


def instcolorization_forward(g: dict, gf: dict, x: Tensor, crops: Tensor, boxes: list[list[float]]) -> Tensor:
    """FusionModel.forward: G's features of the crops fused into GF's (box_info at size, /2, /4, /8)."""
    size = x.shape[-1]  # the release's input is square
    infos = [[get_box_info(b, (size, size), size // 2**k) for b in boxes] for k in range(4)]
    _, inst = siggraph_forward(g, crops)
    names = {stage: (name, level) for name, _, stage, level in FUSION}

    def fuse(stage: str, t: Tensor) -> Tensor:
        name, level = names[stage]
        return weight_generator(gf, name, inst[stage], t, infos[level])

    return siggraph_forward(gf, x, fuse)[0]


# -- helpers -------------------------------------------------------------------------------------------------


def cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def close(actual: Tensor, expected: Tensor) -> None:
    scale = max(1.0, expected.abs().max().item())
    torch.testing.assert_close(actual, expected, rtol=0.0, atol=1e-5 * scale)


def l_input(h: int, w: int, seed: int) -> Tensor:
    """A normalised lightness (L - 50) / 100 with some structure."""
    g = torch.Generator().manual_seed(seed)
    lightness = F.interpolate(torch.rand(1, 1, h // 4, w // 4, generator=g), size=(h, w), mode="bilinear")
    return (lightness * 100.0 - 50.0) / 100.0


def hints(h: int, w: int, seed: int) -> tuple[Tensor, Tensor]:
    g = torch.Generator().manual_seed(seed)
    mask = torch.zeros(1, 1, h, w)
    mask[..., 3:6, 4:9] = 1.0
    mask[..., 20:22, 30:33] = 1.0
    return (torch.rand(1, 2, h, w, generator=g) * 160 - 80) * mask, mask


@pytest.fixture(scope="module")
def eccv16_state() -> dict[str, Tensor]:
    state = random_state(eccv16_arch(), 0)
    # model_out: the 313 bin centres / 110, in a shuffled order (the release's order need not be tinct's)
    perm = torch.randperm(313, generator=torch.Generator().manual_seed(1))
    state["model_out.weight"] = (ab_bins()[perm] / 110.0).t().reshape(2, 313, 1, 1).contiguous()
    return state


@pytest.fixture(scope="module")
def eccv16_file(tmp_path_factory: pytest.TempPathFactory, eccv16_state: dict[str, Tensor]) -> Path:
    path = tmp_path_factory.mktemp("eccv16") / "colorization_release_v2-9b330a0b.pth"
    torch.save(eccv16_state, path)
    return path


# -- conversion equals the original ------------------------------------------------------------------------


def test_eccv16_equals_the_release(
    eccv16_state: dict, eccv16_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "eccv16.pt"
    code, stdout, err = cli(["import-weights", "eccv16", str(eccv16_file), "--out", str(out)], capsys)
    assert code == 0, err
    assert file_sha256(eccv16_file) in stdout and "temperature 1.0" in stdout
    assert "NOT the released" in err  # its name is the release's, its contents are not
    colorizer, info = load_colorizer_file(out)
    cfg = config_from_dict(info["config"])
    assert cfg.model.arch == "eccv16" and cfg.model.temperature == 1.0 and cfg.model.width == 1.0
    x = l_input(32, 48, 2)
    with torch.no_grad():
        close(colorizer.network_ab(x), eccv16_forward(eccv16_state, x))  # the recorded temperature: 1.0
        annealed = colorizer.network_ab(x, temperature=0.38)
    assert not torch.allclose(annealed, colorizer.network_ab(x), atol=1e-2)
    card = json.loads(out.with_suffix(".json").read_text())
    assert card["source"]["files"][0]["sha256"] == file_sha256(eccv16_file)
    assert card["source"]["files"][0]["release"] == "mismatch" and card["parameters"] > 30_000_000
    # the function writes the same
    again = import_weights("eccv16", [eccv16_file], tmp_path / "again.pt")
    a, b = torch.load(out, weights_only=True), torch.load(again, weights_only=True)
    assert a["state_dict"].keys() == b["state_dict"].keys()
    assert all(torch.equal(a["state_dict"][k], b["state_dict"][k]) for k in a["state_dict"])
    assert a["state_dict"]["classifier.weight"].dtype == torch.float32


def test_siggraph17_equals_the_release(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    state = random_state(siggraph_arch(), 3)
    path = tmp_path / "siggraph17-df00044c.pth"
    # without num_batches_tracked, as a file saved by PyTorch < 0.4.1
    torch.save({k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}, path)
    out = import_weights("siggraph17", [path], tmp_path / "sig.pt")
    colorizer, info = load_colorizer_file(out)
    assert config_from_dict(info["config"]).model.arch == "siggraph17"
    lightness = l_input(32, 48, 4)
    ab, mask = hints(32, 48, 5)
    automatic = torch.cat([lightness, torch.zeros(1, 2, 32, 48), torch.full((1, 1, 32, 48), -0.5)], 1)
    guided = torch.cat([lightness, ab / 110.0, mask - 0.5], 1)  # normalize_ab, mask - mask_cent
    with torch.no_grad():
        close(colorizer.network_ab(lightness), siggraph_forward(state, automatic)[0])
        close(colorizer.network_ab(lightness, hints=(ab, mask)), siggraph_forward(state, guided)[0])
    # and through the CLI
    code, stdout, err = cli(
        ["import-weights", "siggraph17", str(path), "--out", str(tmp_path / "c.pt")], capsys
    )
    assert code == 0 and file_sha256(path) in stdout and "NOT the released siggraph17-df00044c.pth" in err
    assert (tmp_path / "c.json").is_file()


def test_instcolorization_equals_the_release(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    g, gcomp = random_state(siggraph_arch(), 6), random_state(siggraph_arch(), 7)
    gf = random_state(fusion_arch(), 8)
    folder = tmp_path / "coco_finetuned_mask_256_ffs"
    folder.mkdir()
    torch.save(g, folder / "latest_net_G.pth", _use_new_zipfile_serialization=False)  # PyTorch < 1.6 format
    torch.save(
        {f"module.{k}": v for k, v in gf.items()}, folder / "latest_net_GF.pth"
    )  # saved from DataParallel
    torch.save(gcomp, folder / "latest_net_GComp.pth")
    out = tmp_path / "inst.pt"
    code, stdout, err = cli(["import-weights", "instcolorization", str(folder), "--out", str(out)], capsys)
    assert code == 0, err
    assert all(file_sha256(folder / n) in stdout for n in ("latest_net_G.pth", "latest_net_GF.pth"))
    colorizer, info = load_colorizer_file(out)
    cfg = config_from_dict(info["config"])
    assert cfg.task == "instance_colorization" and cfg.model.stage == "fusion"
    assert cfg.model.fusion_style == "instcolorization" and cfg.model.crop_size == 256
    card = json.loads(out.with_suffix(".json").read_text())
    assert [f["role"] for f in card["source"]["files"]] == ["G", "GF", "GComp"]
    assert card["ignored_keys"]["latest_net_GF.pth"][0].startswith("weight_layerout.")

    colorizer.net.crop_size = 16  # the release crops at 256 x 256; small crops keep the test fast
    lightness = l_input(48, 48, 9)
    x = torch.cat([lightness, torch.zeros(1, 2, 48, 48), torch.full((1, 1, 48, 48), -0.5)], 1)
    # Two overlapping boxes; the second is under one cell wide at 1/8 (the release's rule widens it).
    boxes = [[4.0, 6.0, 42.0, 40.0], [40.0, 8.0, 46.0, 36.0]]
    crops = crop_instances(x, torch.tensor(boxes), 16)  # the instance network's input, as tinct crops
    with torch.no_grad():
        fused = colorizer.network_ab(lightness, boxes=torch.tensor(boxes))
        close(fused, instcolorization_forward(g, gf, x, crops, boxes))
        # no boxes: the release colorizes with GComp
        close(colorizer.network_ab(lightness), siggraph_forward(gcomp, x)[0])
        close(colorizer.network_ab(lightness, boxes=torch.zeros(0, 4)), siggraph_forward(gcomp, x)[0])

    # the function, with the three files named one by one
    files = [folder / n for n in ("latest_net_GComp.pth", "latest_net_G.pth", "latest_net_GF.pth")]
    again = import_weights("instcolorization", files, tmp_path / "again.pt")
    a, b = torch.load(out, weights_only=True), torch.load(again, weights_only=True)
    assert all(torch.equal(a["state_dict"][k], b["state_dict"][k]) for k in a["state_dict"])

    # the fusion network's file in the instance network's place: refused, not half-used
    swapped = tmp_path / "swapped"
    swapped.mkdir()
    for name, target in (("G", "GF"), ("GF", "GF"), ("GComp", "GComp")):
        (swapped / f"latest_net_{name}.pth").symlink_to(folder / f"latest_net_{target}.pth")
    with pytest.raises(
        DataError, match=r"latest_net_G\.pth: not InstColorization's instance network.*fusion"
    ):
        import_weights("instcolorization", [swapped], tmp_path / "swapped.pt")
    assert not (tmp_path / "swapped.pt").exists()


# -- clear errors, no output left behind -------------------------------------------------------------------


def _fails(argv: list[str], capsys: pytest.CaptureFixture[str], *needles: str) -> str:
    code, _, err = cli(argv, capsys)
    lines = [line for line in err.splitlines() if "error:" in line]
    assert code == 2 and len(lines) == 1, err
    assert all(n in lines[0] for n in needles), lines[0]
    assert "Traceback" not in err
    return lines[0]


def test_truncated_file(eccv16_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = eccv16_file.read_bytes()
    bad = tmp_path / "colorization_release_v2-9b330a0b.pth"
    bad.write_bytes(data[: len(data) // 2])
    out = tmp_path / "out.pt"
    _fails(["import-weights", "eccv16", str(bad), "--out", str(out)], capsys, str(bad), "truncated")
    assert not out.exists() and not out.with_suffix(".json").exists()
    assert check_release(bad, "eccv16").status == "mismatch"
    assert "truncated download" in check_release(bad, "eccv16").message


def test_files_that_are_not_weights(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = tmp_path / "notes.pth"
    text.write_text("not weights\n")
    out = tmp_path / "out.pt"
    _fails(["import-weights", "siggraph17", str(text), "--out", str(out)], capsys, str(text), "not readable")
    listed = tmp_path / "list.pth"
    torch.save([torch.zeros(3)], listed)
    _fails(
        ["import-weights", "eccv16", str(listed), "--out", str(out)], capsys, str(listed), "not a state dict"
    )
    missing = tmp_path / "nope.pth"
    _fails(
        ["import-weights", "eccv16", str(missing), "--out", str(out)], capsys, str(missing), "no such file"
    )
    _fails(
        ["import-weights", "instcolorization", str(tmp_path), "--out", str(out)], capsys, "latest_net_GF.pth"
    )
    assert not out.exists() and not out.with_suffix(".json").exists()


def test_an_eccv16_file_given_as_siggraph17(
    eccv16_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out.pt"
    line = _fails(
        ["import-weights", "siggraph17", str(eccv16_file), "--out", str(out)],
        capsys,
        str(eccv16_file),
        "siggraph17",
        "model8up.0.weight",
        "looks like the eccv16 release",
    )
    assert "unexpected" in line and not out.exists()


def test_a_width_mismatch(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    state = random_state(eccv16_arch(0.5), 10)
    state["model_out.weight"] = (ab_bins() / 110.0).t().reshape(2, 313, 1, 1).contiguous()
    path = tmp_path / "half.pth"
    torch.save(state, path)
    out = tmp_path / "out.pt"
    _fails(
        ["import-weights", "eccv16", str(path), "--out", str(out)], capsys, str(path), "width 0.5", "shape"
    )
    assert not out.exists()


def test_eccv16_model_out_must_hold_the_bins(eccv16_state: dict, tmp_path: Path) -> None:
    state = dict(eccv16_state)
    state["model_out.weight"] = state["model_out.weight"] * 1.5
    path = tmp_path / "scaled.pth"
    torch.save(state, path)
    with pytest.raises(DataError, match="permutation of the 313"):
        import_weights("eccv16", [path], tmp_path / "out.pt")
    assert not (tmp_path / "out.pt").exists()


def test_bad_arguments(eccv16_file: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="valid choices"):
        import_weights("eccv17", [eccv16_file], tmp_path / "o.pt")
    with pytest.raises(ConfigError, match="one weights file"):
        import_weights("eccv16", [eccv16_file, eccv16_file], tmp_path / "o.pt")
    with pytest.raises(ConfigError, match="three files"):
        import_weights("instcolorization", [eccv16_file, eccv16_file], tmp_path / "o.pt")
    with pytest.raises(DataError, match="cannot tell which"):
        import_weights("instcolorization", [eccv16_file] * 3, tmp_path / "o.pt")
    with pytest.raises(ConfigError, match="overwrite an input"):
        import_weights("eccv16", [eccv16_file], eccv16_file)
    assert not (tmp_path / "o.pt").exists()


# -- hashes ----------------------------------------------------------------------------------------------------


def test_sha256_and_the_release_list(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "small.pth"
    data = bytes(range(256)) * 5000  # several 1 MiB chunks
    path.write_bytes(data)
    sha = hashlib.sha256(data).hexdigest()
    assert file_sha256(path) == sha
    eccv16 = [r for r in RELEASES if r.kind == "eccv16"]
    assert [(r.file, r.sha256, r.size) for r in eccv16] == [
        (
            "colorization_release_v2-9b330a0b.pth",
            "9b330a0bae53f4ded77b1e23defbf78beaa09c10ebc4c4999e8e4f4a160b93f9",
            128_976_165,
        )
    ]
    assert all(r.sha256.startswith(r.file.split("-")[-1][:8]) for r in RELEASES if "-" in r.file)
    assert {r.role for r in RELEASES if r.kind == "instcolorization"} == {"G", "GF", "GComp"}
    assert check_release(path, "siggraph17").status == "unknown"
    # a release whose full hash or 8-digit prefix is this file's
    full = official.Release("eccv16", "x.pth", sha, len(data), "test")
    prefix = official.Release("siggraph17", "y.pth", sha[:8], None, "test")
    monkeypatch.setattr(official, "RELEASES", (*RELEASES, prefix))
    assert check_release(path, "siggraph17").status == "prefix-matched"
    monkeypatch.setattr(official, "RELEASES", (*RELEASES, full))
    assert check_release(path, "eccv16").status == "matched"
    wrong_kind = check_release(path, "siggraph17")
    assert wrong_kind.status == "mismatch" and "released eccv16 file" in wrong_kind.message
    gcomp = official.Release("instcolorization", "latest_net_GComp.pth", sha, len(data), "test", "GComp")
    monkeypatch.setattr(official, "RELEASES", (*RELEASES, gcomp))
    assert check_release(path, "instcolorization", "GComp").status == "matched"
    wrong_role = check_release(path, "instcolorization", "G")
    assert wrong_role.status == "mismatch" and "given as InstColorization's G" in wrong_role.message


def test_cli_kinds_are_the_importers() -> None:
    from tinct.cli.weights import KINDS

    assert KINDS == official.KINDS

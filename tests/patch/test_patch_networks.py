import sys
import zlib

import pytest
import torch
from torch.testing import assert_close

from tinct.core.exceptions import ConfigError, ShapeError, UnknownNameError
from tinct.patch.fusion import FUSIONS, create_fusion
from tinct.patch.metadata import HashedNgramEmbedding, MetadataEncoder, ngram_ids
from tinct.patch.networks import PatchColorNet

NUM_CAMERAS = 3
DEVICES = ["Canon EOS 5D Mark II", None, "iPhone 12 Pro", ""]


def _inputs(b: int = 4, s: int = 32, seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    return {
        "image": torch.rand(b, 3, s, s, generator=g),
        "meta": torch.randn(b, 4, generator=g),
        "meta_mask": torch.rand(b, 4, generator=g) > 0.3,
        "camera": torch.randint(0, NUM_CAMERAS + 1, (b,), generator=g),
    }


def _small(**kw) -> PatchColorNet:
    torch.manual_seed(0)
    return PatchColorNet(NUM_CAMERAS, **{"width": 8, "depth": 3, "meta_dim": 16, "token_dim": 16, **kw})


def _wake(net: torch.nn.Module) -> None:
    """Give every zero-initialised parameter (head output, FiLM, gate) random values."""
    with torch.no_grad():
        for p in net.parameters():
            if not p.any():
                p.normal_(0, 0.5)


CASES = [("small_cnn", 32), ("small_cnn", 64), ("resnet18", 32), ("mobilenet_v2", 32)]


@pytest.mark.parametrize("fusion", FUSIONS)
@pytest.mark.parametrize(("backbone", "size"), CASES)
def test_shapes(fusion: str, backbone: str, size: int) -> None:
    net = _small(backbone=backbone, fusion=fusion).eval()
    x = _inputs(2, size)
    fmap = net.forward_features(x["image"])
    assert fmap.shape[:2] == (2, net.backbone.num_features)
    vec = tokens = None
    if net.meta is not None:
        vec, tokens = net.meta.encode(x["meta"], x["meta_mask"], x["camera"])
    assert net.fusion(fmap, vec, tokens).shape == (2, net.fusion.out_features)
    assert net(**x).shape == (2, 3)


def test_fusion_out_features() -> None:
    assert create_fusion("none", 32, 16, 16).out_features == 32
    assert create_fusion("concat", 32, 16, 16).out_features == 48
    assert create_fusion("film", 32, 16, 16).out_features == 32
    assert create_fusion("cross_attention", 32, 16, 16).out_features == 32


@pytest.mark.parametrize("name", ["film", "cross_attention"])
@pytest.mark.parametrize("hw", [(4, 5), (1, 1)])
def test_identity_at_init_then_trainable(name: str, hw: tuple[int, int]) -> None:
    torch.manual_seed(0)
    fusion = create_fusion(name, 32, 16, 16)
    none = create_fusion("none", 32, 16, 16)
    fmap, vec, tokens = torch.randn(3, 32, *hw), torch.randn(3, 16), torch.randn(3, 6, 16)
    assert_close(fusion(fmap, vec, tokens), none(fmap, vec, tokens), atol=0, rtol=0)

    opt = torch.optim.SGD(fusion.parameters(), lr=0.1)
    target = torch.randn(3, 32)
    for _ in range(2):
        opt.zero_grad()
        ((fusion(fmap, vec, tokens) - target) ** 2).mean().backward()
        opt.step()
    trained = fusion.gate if name == "cross_attention" else fusion.film.weight
    assert trained.grad is not None and trained.grad.abs().sum() > 0
    if name == "cross_attention":
        assert fusion.out_proj.weight.grad.abs().sum() > 0  # past the gate once it opened
    assert not torch.equal(fusion(fmap, vec, tokens), none(fmap, vec, tokens))


def test_initial_prediction_is_lab_mean_and_buffers_saved() -> None:
    net = _small(lab_mean=(55.0, 10.0, 15.0), lab_scale=(10.0, 5.0, 5.0))
    lab = net(**_inputs())
    assert_close(lab, torch.tensor([[55.0, 10.0, 15.0]]).expand(4, 3), atol=0, rtol=0)
    state = net.state_dict()
    assert_close(state["lab_mean"], torch.tensor([55.0, 10.0, 15.0]))
    assert_close(state["lab_scale"], torch.tensor([10.0, 5.0, 5.0]))


def test_ngram_ids_are_crc32() -> None:
    # zlib.crc32 of b"<a", b"ab", b"b>", b"<ab", b"ab>" modulo 1024, computed once and frozen here, so a
    # change of hash (or a salted hash()) shows up across processes and machines.
    expected = [144653006 % 1024, 2659403885 % 1024, 3614639729 % 1024, 225091444 % 1024, 553544843 % 1024]
    assert expected == [718, 109, 625, 884, 139]
    assert ngram_ids("AB", (2, 3), 1024) == expected
    assert ngram_ids("ab", (2,), 1024) == [zlib.crc32(g) % 1024 for g in (b"<a", b"ab", b"b>")]
    assert ngram_ids(" a  b ", (2,), 64) == ngram_ids("a b", (2,), 64)
    assert ngram_ids(None) == [] and ngram_ids("") == []


def test_hashed_embedding() -> None:
    mods = []
    for _ in range(2):
        torch.manual_seed(3)
        mods.append(HashedNgramEmbedding(buckets=256, dim=8))
    out = mods[0](DEVICES)
    assert out.shape == (4, 8)
    assert_close(out, mods[1](DEVICES), atol=0, rtol=0)
    assert not out[1].any() and not out[3].any()  # None and "" -> zeros
    assert not mods[0]([None, None]).any()

    a = set(ngram_ids("Canon EOS 5D Mark II"))
    b = set(ngram_ids("Canon EOS 5D Mark III"))
    c = set(ngram_ids("iPhone 12 Pro"))
    assert len(a & b) / len(a | b) > 0.8 > 0.2 > len(a & c) / len(a | c)
    e = mods[0](["Canon EOS 5D Mark II", "Canon EOS 5D Mark III", "iPhone 12 Pro"])
    cos = torch.nn.functional.cosine_similarity
    assert cos(e[0], e[1], dim=0) > cos(e[0], e[2], dim=0)


@pytest.mark.parametrize("fusion", ["concat", "film", "cross_attention"])
def test_masked_meta_values_are_ignored(fusion: str) -> None:
    net = _small(fusion=fusion).eval()
    _wake(net)
    x = _inputs()
    x["meta_mask"][:, 1] = False
    base = net(**x)
    changed = dict(x, meta=x["meta"].clone())
    changed["meta"][:, 1] = torch.tensor([5.0, -3.0, float("nan"), 100.0])
    assert_close(net(**changed), base, atol=0, rtol=0)
    x["meta_mask"][:, 0] = True
    changed["meta"][:, 0] += 1.0
    assert not torch.allclose(net(**changed), base)


def test_metadata_tokens() -> None:
    enc = MetadataEncoder(NUM_CAMERAS, camera_dim=4, out_dim=8, device_embedding=True, token_dim=16)
    x = _inputs()
    assert enc(x["meta"], x["meta_mask"], x["camera"], DEVICES).shape == (4, 8)
    tokens = enc.tokens(x["meta"], x["meta_mask"], x["camera"], DEVICES)
    assert tokens.shape == (4, 4 + 2, 16)
    x["meta_mask"][0] = False
    tokens = enc.tokens(x["meta"], x["meta_mask"], x["camera"], DEVICES)
    assert_close(tokens[0, :4], enc.missing, atol=0, rtol=0)
    with pytest.raises(ValueError, match=r"\[0, 3\]"):
        enc(x["meta"], x["meta_mask"], torch.tensor([0, 1, 2, 4]))
    with pytest.raises(ShapeError, match="device"):
        enc(x["meta"], x["meta_mask"], x["camera"], DEVICES[:2])


def test_mean_features() -> None:
    x = _inputs()
    stats = torch.randn(4, 12)
    off = _small()
    on = _small(mean_features=True)
    assert on.head[0].in_features == off.head[0].in_features + 12
    assert off(**x, stats=stats).shape == on(**x, stats=stats).shape == (4, 3)
    with pytest.raises(ValueError, match="stats"):
        on(**x)
    with pytest.raises(ShapeError, match="stats"):
        on(**x, stats=torch.randn(4, 11))


def test_image_only() -> None:
    net = _small(fusion="film", use_metadata=False)
    assert net.fusion_name == "none" and net.meta is None
    x = _inputs()
    assert net(x["image"]).shape == (4, 3)
    assert _small(fusion="none").meta is None


def test_defaults_for_missing_metadata() -> None:
    net = _small(fusion="cross_attention", device_embedding=True)
    x = _inputs()
    assert net(x["image"]).shape == (4, 3)
    assert net(x["image"], x["meta"]).shape == (4, 3)


def test_shape_and_name_errors() -> None:
    net = _small()
    x = _inputs()
    with pytest.raises(ShapeError, match=r"meta: expected shape \(4, 4\)"):
        net(x["image"], torch.zeros(4, 5), torch.ones(4, 5, dtype=torch.bool), x["camera"])
    with pytest.raises(ShapeError, match="meta_mask"):
        net(x["image"], x["meta"], torch.ones(4, 3, dtype=torch.bool), x["camera"])
    with pytest.raises(ShapeError, match="camera"):
        net(x["image"], x["meta"], x["meta_mask"], x["camera"][:2])
    with pytest.raises(ShapeError, match="image"):
        net(torch.rand(4, 1, 32, 32))
    with pytest.raises(UnknownNameError, match=r"'film'.*'cross_attention'"):
        _small(fusion="gated")
    with pytest.raises(UnknownNameError, match=r"'resnet18'.*timm/<model>"):
        _small(backbone="resnet9000")
    with pytest.raises(ConfigError, match="divisible"):
        create_fusion("cross_attention", 8, 8, 10)


def test_timm_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "timm", None)
    with pytest.raises(ConfigError, match=r"timm.*not installed"):
        _small(backbone="timm/resnet18")


def test_timm_backbone() -> None:  # timm is a test extra (tinct[test]): its absence fails here
    net = _small(backbone="timm/resnet10t")
    assert net(**_inputs(2, 32)).shape == (2, 3)


@pytest.mark.parametrize("fusion", FUSIONS)
def test_gradients_finite(fusion: str) -> None:
    net = _small(fusion=fusion, device_embedding=True, mean_features=True).train()
    _wake(net)
    x = _inputs()
    net(**x, stats=torch.randn(4, 12), device=DEVICES).sum().backward()
    for name, p in net.named_parameters():
        assert p.grad is not None, f"{fusion}: {name} got no gradient"
        assert torch.isfinite(p.grad).all(), name

"""GPU paths (skipped without CUDA; run on a lent GPU machine)."""

import pytest
import torch

from tinct.engine import train

pytestmark = pytest.mark.gpu


def test_train_on_gpu(tiny_cfg) -> None:
    m = train(tiny_cfg, accelerator="gpu", devices=1, verbose=False)
    assert 0 <= m["test/angular_mean"] < 90


def test_color_ops_on_cuda_match_cpu() -> None:
    from tinct.color import delta_e_ciede2000, lab_to_rgb, rgb_to_lab, soft_encode

    g = torch.Generator().manual_seed(0)
    rgb = torch.rand(2, 3, 32, 32, generator=g, dtype=torch.float64)
    lab_cpu = rgb_to_lab(rgb)
    lab_gpu = rgb_to_lab(rgb.cuda())
    assert lab_gpu.device.type == "cuda"
    assert torch.allclose(lab_gpu.cpu(), lab_cpu, atol=1e-9)
    assert torch.allclose(lab_to_rgb(lab_gpu).cpu(), rgb, atol=1e-9)
    de = delta_e_ciede2000(lab_cpu, lab_cpu.flip(-1))
    assert torch.allclose(delta_e_ciede2000(lab_gpu, lab_gpu.flip(-1)).cpu(), de, atol=1e-9)
    w_c, i_c = soft_encode(lab_cpu[:, 1:].float())
    w_g, i_g = soft_encode(lab_gpu[:, 1:].float())
    assert torch.equal(i_g.cpu(), i_c) and torch.allclose(w_g.cpu(), w_c, atol=1e-5)

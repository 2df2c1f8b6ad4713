import numpy as np
import torch

from lrnet.nn import SimAM


def _simam_float64_numpy(x: np.ndarray, lam: float) -> np.ndarray:
    out = np.empty_like(x)
    b, c, h, w = x.shape
    n = h * w - 1
    for i in range(b):
        for j in range(c):
            t = x[i, j]
            d = (t - t.mean()) ** 2
            v = d.sum() / n
            e_inv = d / (4.0 * (v + lam)) + 0.5
            out[i, j] = t / (1.0 + np.exp(-e_inv))
    return out


def test_simam_matches_float64_recomputation():
    torch.manual_seed(0)
    x = torch.randn(2, 3, 5, 7) * 3
    ref = _simam_float64_numpy(x.double().numpy(), 1e-4)
    assert np.allclose(SimAM(1e-4)(x.double()).numpy(), ref, rtol=1e-12, atol=1e-12)
    assert np.allclose(SimAM(1e-4)(x).numpy(), ref, rtol=1e-5, atol=1e-6)
    # lambda matters on a near-constant map (v ~ 0)
    flat = torch.full((1, 1, 4, 4), 2.0, dtype=torch.float64)
    flat[0, 0, 0, 0] = 2.001
    assert np.allclose(SimAM(0.5)(flat).numpy(), _simam_float64_numpy(flat.numpy(), 0.5), rtol=1e-12)


def test_simam_is_parameter_free_and_finite_on_single_pixel():
    m = SimAM()
    assert sum(p.numel() for p in m.parameters()) == 0
    x = torch.randn(2, 4, 1, 1, requires_grad=True)
    y = m(x)
    y.sum().backward()
    assert torch.isfinite(y).all() and torch.isfinite(x.grad).all()
    assert torch.allclose(y, x * torch.sigmoid(torch.tensor(0.5)))  # d = 0 -> E_inv = 0.5

import math

import numpy as np
import torch

from lrnet.nn import DFL, Detect


def _softmax(z, axis):
    e = np.exp(z - z.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def test_dfl_is_the_expected_bin_index():
    torch.manual_seed(0)
    x = torch.randn(2, 4 * 16, 5)
    expected = (
        _softmax(x.double().numpy().reshape(2, 4, 16, 5), 2) * np.arange(16)[None, None, :, None]
    ).sum(2)
    assert np.allclose(DFL(16)(x).numpy(), expected, atol=1e-5)
    dfl = DFL(16)
    assert not dfl.conv.weight.requires_grad and dfl.conv.weight.numel() == 16


def test_detect_channels_and_bias_init():
    head = Detect(nc=5, ch=(32, 64, 128))
    head.set_stride([8, 16, 32])
    head.initialize_biases()
    c_box, c_cls = max(16, 32 // 4, 64), max(32, 5)
    assert head.box[0][0].conv.out_channels == c_box and head.cls[0][0].conv.out_channels == c_cls
    for box, cls, s in zip(head.box, head.cls, (8, 16, 32)):
        assert torch.all(box[-1].bias == 1.0)
        assert torch.allclose(cls[-1].bias, torch.full((5,), math.log(5 / 5 / (640 / s) ** 2)))


def test_decode_layout_matches_per_anchor_reference():
    torch.manual_seed(0)
    nc, reg_max, strides = 3, 16, (8, 16)
    head = Detect(nc=nc, ch=(4, 8), reg_max=reg_max)
    head.set_stride(list(strides))
    maps = [torch.randn(2, 4 * reg_max + nc, 4, 6), torch.randn(2, 4 * reg_max + nc, 2, 3)]
    out = head.decode(maps)
    assert out.shape == (2, 4 * 6 + 2 * 3, 4 + nc)
    rows = []
    for m, s in zip(maps, strides):
        m = m.double().numpy()
        for y in range(m.shape[2]):
            for x in range(m.shape[3]):
                cell = m[:, :, y, x]
                probs = _softmax(cell[:, : 4 * reg_max].reshape(2, 4, reg_max), 2)
                l, t, r, b = np.moveaxis((probs * np.arange(reg_max)).sum(2), 1, 0)
                ax, ay = x + 0.5, y + 0.5
                box = np.stack([ax - l, ay - t, ax + r, ay + b], 1) * s
                rows.append(np.concatenate([box, 1 / (1 + np.exp(-cell[:, 4 * reg_max :]))], 1))
    assert np.allclose(out.numpy(), np.stack(rows, 1), atol=1e-4)


def test_eval_forward_is_decode_of_training_output_and_anchors_are_cached():
    torch.manual_seed(0)
    head = Detect(nc=2, ch=(8, 16))
    head.set_stride([8, 16])
    feats = [torch.randn(1, 8, 4, 4), torch.randn(1, 16, 2, 2)]
    head.train()
    raw = head(feats)
    assert [tuple(r.shape) for r in raw] == [(1, 66, 4, 4), (1, 66, 2, 2)]
    head.eval()
    with torch.no_grad():
        out = head(feats)
        raw = head.forward_raw(feats)  # eval-mode BatchNorm, as in `out`
        first_points = head.anchors(raw)[0]
        assert torch.allclose(out, head.decode(raw), atol=1e-6)
        assert head.anchors(raw)[0] is first_points  # same shapes: no rebuild

"""Opt-in compiled inference (`lrnet.runtime.compiled`): same outputs as eager, padded batches, and a
failed compilation falls back to eager with a warning."""

import shutil

import pytest
import torch
from torch import nn

from lrnet.errors import ConfigError
from lrnet.runtime import compiled as C


class TwoHeads(nn.Module):
    """Conv + SiLU + concat, returning a tuple like a detection model in eval mode."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Conv2d(3, 8, 3, padding=1)
        self.b = nn.Conv2d(8, 4, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        y = nn.functional.silu(self.a(x))
        return torch.cat([self.b(y), y[:, :4]], 1).flatten(2), y.mean((2, 3))


def _model() -> nn.Module:
    torch.manual_seed(0)
    return TwoHeads().eval()


@pytest.mark.skipif(shutil.which("g++") is None and shutil.which("c++") is None, reason="no C++ compiler")
def test_compiled_matches_eager_for_full_and_padded_batches():
    model = _model()
    fwd = C.compile_for_inference(model, batch=3)
    x = torch.rand(3, 3, 32, 32)
    with torch.inference_mode():
        for n in (3, 1):  # 1: padded to 3, the padding's rows dropped
            got, want = fwd(x[:n]), model(x[:n])
            assert isinstance(got, tuple) and [g.shape for g in got] == [w.shape for w in want]
            for g, w in zip(got, want):
                torch.testing.assert_close(g, w, atol=1e-4, rtol=1e-4)
    assert fwd.compiled is not None  # it did compile: no fallback happened


def test_failed_compilation_warns_and_stays_eager(monkeypatch):
    calls = []

    def broken(x):
        calls.append(x.shape)
        raise RuntimeError("no working C++ compiler")

    monkeypatch.setattr(C.torch, "compile", lambda model, **kw: broken)
    model = _model()
    fwd = C.compile_for_inference(model, batch=2)
    x = torch.rand(1, 3, 16, 16)
    with torch.inference_mode(), pytest.warns(RuntimeWarning, match="no working C.. compiler.*eager"):
        got = fwd(x)
    with torch.inference_mode():
        torch.testing.assert_close(got, model(x), atol=0, rtol=0)
        fwd(x)  # no second attempt
    assert calls == [torch.Size([2, 3, 16, 16])] and fwd.compiled is None  # padded once, tried once


def test_larger_input_than_the_batch_runs_eager_and_training_models_are_refused(monkeypatch):
    def never(x):
        pytest.fail("the compiled model must not run on a batch larger than its own")

    monkeypatch.setattr(C.torch, "compile", lambda model, **kw: never)
    model = _model()
    fwd = C.compile_for_inference(model, batch=1)
    x = torch.rand(2, 3, 8, 8)
    with torch.inference_mode():
        torch.testing.assert_close(fwd(x), model(x), atol=0, rtol=0)
    with pytest.raises(ConfigError, match="eval-mode"):
        C.compile_for_inference(_model().train(), batch=1)


@pytest.mark.skipif(shutil.which("g++") is None and shutil.which("c++") is None, reason="no C++ compiler")
def test_predict_with_compile_finds_what_eager_finds(tmp_path, capsys):
    import json

    import cv2
    import numpy as np

    from lrnet.cli import main
    from tests.fixtures.predict_fixtures import make_checkpoint

    ckpt = make_checkpoint(tmp_path / "m.pt", nc=3, imgsz=64)
    src = tmp_path / "src"
    src.mkdir()
    rng = np.random.default_rng(0)
    for i in range(3):  # batch 2: the last pass is padded to the compiled batch
        cv2.imwrite(str(src / f"i{i}.png"), rng.integers(0, 255, (48, 64 + 8 * i, 3), dtype=np.uint8))
    common = ["predict", "--weights", str(ckpt), "--source", str(src), "--conf", "0", "--save-json",
              "--batch", "2", "--project", str(tmp_path / "runs")]  # fmt: skip
    assert main([*common, "--name", "eager", "--threads", "1"]) == 0
    assert main([*common, "--name", "compiled", "--threads", "1", "--compile"]) == 0
    eager, comp = (
        json.loads((tmp_path / "runs" / n / "predictions.json").read_text()) for n in ("eager", "compiled")
    )
    assert len(eager) == len(comp) > 0
    key = lambda d: (d["image_id"], d["category_id"], -d["score"])  # noqa: E731
    for e, c in zip(sorted(eager, key=key), sorted(comp, key=key)):
        assert (e["image_id"], e["category_id"]) == (c["image_id"], c["category_id"])
        assert c["score"] == pytest.approx(e["score"], abs=1e-4)
        assert c["bbox"] == pytest.approx(e["bbox"], abs=1e-2)

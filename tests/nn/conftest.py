"""Shared fixtures of the model tests: each shipped model is built once per test session."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lrnet.nn import DetectionModel, build_model


class _ModelCache:
    def __init__(self) -> None:
        self._models: dict[str, DetectionModel] = {}

    def __call__(self, name: str) -> DetectionModel:
        if name not in self._models:
            torch.manual_seed(0)
            self._models[name] = build_model(name)
        return self._models[name]


@pytest.fixture(scope="session")
def shipped_model():
    """Callable name -> built model (shared: deep-copy before changing it)."""
    return _ModelCache()


def _randomize_bn(model: nn.Module, seed: int = 0) -> None:
    """Give every BatchNorm non-trivial statistics and affine values so folding is really exercised."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                c = m.num_features
                m.running_mean.copy_(torch.randn(c, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(c, generator=g) + 0.5)
                m.weight.copy_(torch.rand(c, generator=g) + 0.5)
                m.bias.copy_(torch.randn(c, generator=g) * 0.1)


@pytest.fixture(scope="session")
def randomize_bn():
    """Callable (model, seed=0) that randomises every BatchNorm's statistics and affine values in place."""
    return _randomize_bn

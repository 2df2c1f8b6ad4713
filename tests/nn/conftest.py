"""Shared fixtures of the model tests: each shipped model is built once per test session."""

from __future__ import annotations

import pytest
import torch

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

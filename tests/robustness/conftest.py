"""Shared fixtures of the robustness suite: a tiny YOLO data set and a tiny random checkpoint."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fixtures.predict_fixtures import make_checkpoint, make_yolo_dataset


@pytest.fixture(scope="session")
def tiny_weights(tmp_path_factory) -> Path:
    """A random yolov8n checkpoint (3 classes, trained size 64)."""
    return make_checkpoint(tmp_path_factory.mktemp("weights") / "w.pt", nc=3)


@pytest.fixture
def tiny_data(tmp_path) -> Path:
    """A fresh 3-image YOLO data set per test (tests add hostile files to it); returns data.yaml."""
    return make_yolo_dataset(tmp_path / "ds", nc=3, n=3, size=64)

from pathlib import Path

import pytest

from lrnet.data.synthetic import generate_synthetic


@pytest.fixture(scope="session")
def synth_small(tmp_path_factory) -> Path:
    """A tiny synthetic set (128 px) shared by the data tests."""
    out = tmp_path_factory.mktemp("synth")
    return generate_synthetic(out, train=8, val=4, imgsz=128, classes=4, seed=3, workers=1, verbose=False)

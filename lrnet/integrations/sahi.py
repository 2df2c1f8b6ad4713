"""An lrnet model as a SAHI `DetectionModel` (optional extra: `pip install sahi`).

    from sahi.predict import get_sliced_prediction
    from lrnet.integrations.sahi import LrnetDetectionModel

    model = LrnetDetectionModel(model_path="best.pt", confidence_threshold=0.25, device="cpu")
    result = get_sliced_prediction("big.jpg", model, slice_height=640, slice_width=640)

SAHI hands images over as RGB arrays; lrnet's `Predictor` letterboxes them at the weights' training
size (or `image_size`), applies `confidence_threshold`, NMS at `iou` and `max_det`, and returns boxes in
the pixels of the image (or slice) given; SAHI shifts them to the full image and merges them.
Category ids are lrnet's class indices; `category_mapping` maps them to the checkpoint's names.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from lrnet.errors import DependencyError

try:
    from sahi.models.base import DetectionModel
    from sahi.prediction import ObjectPrediction
except ImportError as e:  # pragma: no cover - exercised only without the extra
    raise DependencyError(
        f"lrnet.integrations.sahi needs the 'sahi' package ({e}); install it with `pip install sahi`"
    ) from e

from lrnet.runtime.predictor import Predictor, load_inference_model


class LrnetDetectionModel(DetectionModel):
    """SAHI `DetectionModel` running an lrnet checkpoint (.pt) or exported .onnx file.

    Extra keyword arguments: `iou` (NMS threshold, default 0.7) and `max_det` (default 300) per
    forward pass (per slice under sliced prediction); `trust_code=True` to load a TorchScript file
    (a program that runs when loaded).
    """

    def __init__(
        self, *args: Any, iou: float = 0.7, max_det: int = 300, trust_code: bool = False, **kwargs: Any
    ) -> None:
        self.iou, self.max_det, self.trust_code = float(iou), int(max_det), bool(trust_code)
        self.names: list[str] = []
        self.predictor: Predictor | None = None
        super().__init__(*args, **kwargs)

    def load_model(self) -> None:
        """Load `model_path` (lrnet checkpoint or .onnx) on `device`."""
        model, names, imgsz = load_inference_model(self.model_path, str(self.device), self.trust_code)
        self.set_model(model, names=names, imgsz=imgsz)

    def set_model(
        self, model: Any, names: list[str] | None = None, imgsz: int | None = None, **kwargs: Any
    ) -> None:
        """Use an already loaded eval-mode lrnet model (`(B, 3, H, W) -> (B, A, 4 + nc)`)."""
        self.model = model
        nc = int(model.nc)
        self.names = list(names or getattr(model, "names", None) or [str(i) for i in range(nc)])
        size = int(self.image_size or imgsz or 640)
        self.predictor = Predictor(
            model, imgsz=size, conf=float(self.confidence_threshold), iou=self.iou, max_det=self.max_det,
            device=str(self.device), batch=1, stride=int(model.stride.max()),
        )  # fmt: skip
        if not self.category_mapping:
            self.category_mapping = {str(i): name for i, name in enumerate(self.names)}

    def perform_inference(self, image: np.ndarray) -> None:
        """Detect objects in one RGB image (H, W, 3); the rows are kept as `_original_predictions`."""
        if self.predictor is None:
            raise ValueError("the lrnet model is not loaded; call load_model() or set_model() first")
        bgr = np.ascontiguousarray(np.asarray(image)[:, :, ::-1])
        self._original_predictions = [self.predictor.predict_image(bgr).numpy()]

    @property
    def num_categories(self) -> int:
        return len(self.names)

    @property
    def has_mask(self) -> bool:
        return False

    @property
    def category_names(self) -> list[str]:
        return list(self.names)

    def _create_object_prediction_list_from_original_predictions(
        self,
        shift_amount_list: list[list[int | float]] | None = [[0, 0]],  # noqa: B006 (SAHI's signature)
        full_shape_list: list[list[int | float]] | None = None,
    ) -> None:
        from sahi.utils.compatibility import fix_full_shape_list, fix_shift_amount_list

        shifts = fix_shift_amount_list(shift_amount_list)
        shapes = fix_full_shape_list(full_shape_list)
        per_image = []
        for i, rows in enumerate(self._original_predictions or []):
            shift = [int(v) for v in shifts[i]]
            full = None if shapes is None else [int(v) for v in shapes[i]]
            preds = []
            for x1, y1, x2, y2, score, cls in rows.tolist():
                if not (x1 < x2 and y1 < y2):
                    continue
                preds.append(
                    ObjectPrediction(
                        bbox=[max(0.0, x1), max(0.0, y1), x2, y2],
                        category_id=int(cls),
                        score=float(score),
                        category_name=self.category_mapping[str(int(cls))],
                        shift_amount=shift,
                        full_shape=full,
                    )
                )
            per_image.append(preds)
        self._object_prediction_list_per_image = per_image

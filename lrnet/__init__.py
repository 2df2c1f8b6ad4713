"""lrnet: small-object detection with LR-Net (Lossless Feature Fusion + RSIoU) and YOLOv8 baselines."""

__version__ = "0.1.0"

"""Text table of a `coco_metrics` result, as `lrnet eval-json` prints it."""

from __future__ import annotations

from typing import Any


def format_metrics_table(metrics: dict[str, Any], per_class: bool = False) -> str:
    """Two-column text table, values as percentages (-1 stays -1: no ground truth in that bin).

    Rows are every key of `metrics` except `per_class`, in its order; `per_class` adds `AP[name]` rows.
    """

    def cell(value: float) -> str:
        return "-1 (no GT)" if value < 0 else f"{100.0 * value:.2f}"

    rows = [(key, cell(value)) for key, value in metrics.items() if key != "per_class"]
    if per_class:
        rows += [(f"AP[{name}]", cell(value)) for name, value in metrics["per_class"].items()]
    width = max(len("metric"), *(len(name) for name, _ in rows))
    lines = [f"{'metric':<{width}}  value (%)", f"{'-' * width}  ---------"]
    lines += [f"{name:<{width}}  {value}" for name, value in rows]
    return "\n".join(lines)

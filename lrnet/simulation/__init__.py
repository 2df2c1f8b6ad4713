"""The bounding-box regression simulation (DIoU paper; LR-Net Fig. 9 and 12): `lrnet simulate`."""

from lrnet.simulation.problem import (
    DEFAULT_LOSSES,
    RegressionProblem,
    SimulationConfig,
    build_problem,
    cxcywh_to_xyxy,
)
from lrnet.simulation.regression import RegressionResult, regress, run_simulation
from lrnet.simulation.report import format_table, plot_angle_cost, plot_error_curves, write_results

__all__ = [
    "DEFAULT_LOSSES",
    "RegressionProblem",
    "RegressionResult",
    "SimulationConfig",
    "build_problem",
    "cxcywh_to_xyxy",
    "format_table",
    "plot_angle_cost",
    "plot_error_curves",
    "regress",
    "run_simulation",
    "write_results",
]

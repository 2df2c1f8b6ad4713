"""The bounding-box regression simulation (DIoU paper; LR-Net Fig. 9 and 12): `lrnet simulate`.

`run_simulation(cfg, out)` is the whole run; `SimulateJob` holds the command's options (its flags are
generated from it) and makes the `SimulationConfig`; the command only prints. The default loss list
is every registered box loss (`lrnet.losses.registered_box_losses`).
"""

from lrnet.simulation.problem import (
    QUICK,
    RegressionProblem,
    SimulationConfig,
    build_problem,
    cxcywh_to_xyxy,
    default_losses,
)
from lrnet.simulation.regression import RegressionResult, regress, regress_all
from lrnet.simulation.report import format_table, plot_angle_cost, plot_error_curves, write_results
from lrnet.simulation.run import SimulateJob, SimulationRun, run_simulation

__all__ = [
    "QUICK",
    "RegressionProblem",
    "RegressionResult",
    "SimulateJob",
    "SimulationConfig",
    "SimulationRun",
    "build_problem",
    "cxcywh_to_xyxy",
    "default_losses",
    "format_table",
    "plot_angle_cost",
    "plot_error_curves",
    "regress",
    "regress_all",
    "run_simulation",
    "write_results",
]

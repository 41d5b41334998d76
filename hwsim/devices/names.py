"""Names a device file may choose whose meaning the schedule implements: dataflows
(:data:`hwsim.schedule.systolic.DATAFLOWS`) and performance models
(:data:`hwsim.schedule.models.PERF_MODELS`).
Each of those registries must hold exactly these names (it checks when it is imported).

Kept here so that validating and loading a device never imports the scheduler.
"""

DATAFLOW_NAMES = ("output_stationary", "weight_stationary", "input_stationary", "dot_product")
SCALESIM_NAMES = {"os": "output_stationary", "ws": "weight_stationary", "is": "input_stationary"}
PERF_MODEL_NAMES = ("hwsim", "vela-5.2", "scalesim-3.0", "edgetpu_compiler")

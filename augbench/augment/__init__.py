"""Per-sample transforms and batch mixing, built from recipes."""

from augbench.augment.ops import OPS, register_op
from augbench.augment.pipeline import BASELINE_SPEC, SamplePipeline, baseline_pipeline, normalize

__all__ = ["BASELINE_SPEC", "OPS", "SamplePipeline", "baseline_pipeline", "normalize", "register_op"]

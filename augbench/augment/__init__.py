"""Per-sample transforms and batch mixing, built from recipes (``recipes/augment/*.yaml``).

Operations are registered by name in ``OPS``, one file per family: ``ops``
(crop, flip), ``erasing`` (Cutout, random erasing), ``policies``
(AutoAugment, RandAugment, TrivialAugment, colour jitter), ``resized_crop``
(the ImageNet random resized crop) and ``albumentations_op`` (any
Albumentations transform). Importing this package
registers them all.
"""

from augbench.augment import albumentations_op, erasing, policies, resized_crop  # noqa: F401  (registers the op families)
from augbench.augment.mixing import BatchMixer, MixConfig, MixParams
from augbench.augment.ops import OPS, OpArgumentError, register_op
from augbench.augment.pipeline import BASELINE_SPEC, SamplePipeline, baseline_pipeline
from augbench.augment.recipe import DLB_MIX_POLICIES, Recipe, list_recipes, load_recipe
from augbench.data.loader import normalize

__all__ = ["BASELINE_SPEC", "DLB_MIX_POLICIES", "OPS", "BatchMixer", "MixConfig", "MixParams", "OpArgumentError",
           "Recipe", "SamplePipeline", "baseline_pipeline", "list_recipes", "load_recipe", "normalize",
           "register_op"]

"""The train/eval loop, checkpoints and metrics; drives any registered method."""

from augbench.augment.recipe import Recipe
from augbench.engine.build import build
from augbench.engine.callbacks import Callback, EarlyStop
from augbench.engine.train import train

__all__ = ["Callback", "EarlyStop", "Recipe", "build", "train"]

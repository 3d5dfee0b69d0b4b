"""The train/eval loop, checkpoints and metrics; drives any registered method."""

from augbench.engine.callbacks import Callback, EarlyStop
from augbench.engine.run import Recipe, build, train

__all__ = ["Callback", "EarlyStop", "Recipe", "build", "train"]

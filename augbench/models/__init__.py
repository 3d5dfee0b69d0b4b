"""Models for augbench: any timm model, plus CIFAR-style networks registered into timm.

Importing this package registers augbench's small-image variants in timm's own registry,
so ``timm.create_model("cifar_resnet20", num_classes=10, in_chans=1)`` works as for any
timm model. The papers behind each family are cited in its module:

* :mod:`augbench.models.cifar_resnet` -- He et al. (2016), ResNet-8/20/32/56/110 and a
  CIFAR-stem ResNet-18.
* :mod:`augbench.models.wide_resnet` -- Zagoruyko and Komodakis (2016), WRN-16-4 and
  WRN-28-10.
* :mod:`augbench.models.vgg` -- Simonyan and Zisserman (2015), VGG-16/19 with batch norm.
"""

from __future__ import annotations

from typing import Any

import timm
import torch.nn as nn

from augbench.errors import UsageError
from augbench.models import vgg, wide_resnet  # noqa: F401  (imported to register the variants)
from augbench.models.cifar_resnet import AUGBENCH_MODELS

__all__ = ["DEFAULT_MODEL", "create", "list_models"]

#: The small, fast model used when none is named (~0.08M parameters).
DEFAULT_MODEL = "cifar_resnet8"


def list_models() -> list[str]:
    """Returns the names of the CIFAR-style models that augbench registers, sorted."""
    return sorted(AUGBENCH_MODELS)


def create(name: str, num_classes: int, in_chans: int, **kwargs: Any) -> nn.Module:
    """Creates an untrained model by name.

    Args:
        name: One of :func:`list_models`, or any timm model name (e.g. ``"resnet18"``).
        num_classes: Outputs of the classifier.
        in_chans: Channels of the input images (1 for grayscale, 3 for RGB).
        **kwargs: Passed on to :func:`timm.create_model` (e.g. ``drop_rate``).

    Returns:
        The model, randomly initialised.

    Raises:
        UsageError: If timm knows no model of that name.
    """
    if not timm.is_model(name):
        raise UsageError(
            f"unknown model {name!r} for --model: use one of augbench's CIFAR models "
            f"({', '.join(list_models())}) or any timm model name (see `augbench models`)"
        )
    return timm.create_model(name, pretrained=False, num_classes=num_classes, in_chans=in_chans, **kwargs)

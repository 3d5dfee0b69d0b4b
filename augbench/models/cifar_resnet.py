"""CIFAR-style ResNets for small (28x28 / 32x32) images, registered into timm.

References:
    He, Zhang, Ren and Sun (2016), "Deep Residual Learning for Image Recognition", CVPR.
    https://arxiv.org/abs/1512.03385 -- Section 4.2 defines the three-stage CIFAR-10
    networks (widths 16/32/64, 6n+2 layers) used here for ``cifar_resnet{8,20,32,56,110}``.

    ``cifar_resnet18`` is the four-stage ImageNet ResNet-18 of the same paper with the
    7x7/stride-2 stem and max-pool replaced by a single 3x3/stride-1 convolution, the usual
    adaptation for 32x32 inputs (as in, e.g., Zhang et al. (2019), "Be Your Own Teacher").

The residual blocks are timm's own :class:`timm.models.resnet.BasicBlock`. This module also
holds the small helpers shared by the other augbench model files (registration, weight
initialisation, handling of timm's pretrained-config keyword arguments).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F
from timm.models import register_model
from timm.models.resnet import BasicBlock, ResNet

__all__ = [
    "CifarClassifier",
    "CifarResNet",
    "AUGBENCH_MODELS",
    "augbench_model",
    "init_weights",
    "pop_timm_kwargs",
]

#: Names of every model variant that augbench registers into timm's registry.
AUGBENCH_MODELS: set[str] = set()

# Keyword arguments that ``timm.create_model`` passes to every entry point.
_TIMM_CFG_KWARGS = ("pretrained_cfg", "pretrained_cfg_overlay", "cache_dir")


def augbench_model(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
    """Registers an entry point with timm and records it as an augbench model.

    Args:
        fn: Model entry point; registered under its ``__name__``.

    Returns:
        The entry point, unchanged.
    """
    AUGBENCH_MODELS.add(fn.__name__)
    return register_model(fn)


def pop_timm_kwargs(name: str, pretrained: bool, kwargs: dict[str, Any]) -> dict[str, Any]:
    """Strips timm's pretrained-config arguments and refuses pretrained weights.

    Args:
        name: Model name, for the error message.
        pretrained: Whether pretrained weights were asked for.
        kwargs: Keyword arguments given to the entry point.

    Returns:
        A copy of ``kwargs`` without the pretrained-config entries.

    Raises:
        ValueError: If ``pretrained`` is true; augbench's CIFAR models have no weights.
    """
    if pretrained:
        raise ValueError(f"no pretrained weights exist for {name!r}; create it with pretrained=False")
    return {k: v for k, v in kwargs.items() if k not in _TIMM_CFG_KWARGS}


def init_weights(module: nn.Module) -> None:
    """Initialises convolutions (Kaiming normal, fan-out, ReLU) and norms (weight 1, bias 0).

    Linear layers keep PyTorch's default initialisation.

    Args:
        module: Model whose submodules are initialised in place.
    """
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


class CifarClassifier(nn.Module):
    """Base for augbench's small-image models: global pool + dropout + linear head, timm-style.

    Subclasses build their trunk, call :meth:`_init_head` and implement
    :meth:`forward_features`; this class supplies ``forward_head``, ``forward``,
    ``get_classifier`` and ``reset_classifier`` and the ``num_classes`` and
    ``num_features`` attributes that timm models have.
    """

    num_classes: int
    num_features: int

    def _init_head(self, num_features: int, num_classes: int, global_pool: str, head_drop: float) -> None:
        """Creates the pooling, dropout and classifier layers.

        Args:
            num_features: Channels of the feature map that :meth:`forward_features` returns.
            num_classes: Classifier outputs; 0 gives a model that returns pooled features.
            global_pool: ``"avg"`` for global average pooling, ``""`` for none.
            head_drop: Dropout probability before the classifier.
        """
        self.num_features = self.head_hidden_size = num_features
        self.head_drop = head_drop
        self.reset_classifier(num_classes, global_pool)

    def get_classifier(self) -> nn.Module:
        """Returns the classifier layer."""
        return self.fc

    def reset_classifier(self, num_classes: int, global_pool: str | None = None) -> None:
        """Replaces the classifier with a freshly initialised one.

        Args:
            num_classes: Outputs of the new classifier; 0 removes it.
            global_pool: ``"avg"`` or ``""`` (no pooling), or None to keep the current pooling.
        """
        if global_pool is not None:
            if global_pool not in ("avg", ""):
                raise ValueError(f"global_pool must be 'avg' or '', got {global_pool!r}")
            self.global_pool = nn.AdaptiveAvgPool2d(1) if global_pool == "avg" else nn.Identity()
            self.flatten = nn.Flatten(1) if global_pool == "avg" else nn.Identity()
        self.num_classes = num_classes
        self.fc = nn.Linear(self.num_features, num_classes) if num_classes > 0 else nn.Identity()

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Maps images (N, C, H, W) to the last feature map (N, num_features, h, w)."""
        raise NotImplementedError

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """Pools a feature map and applies the classifier.

        Args:
            x: Output of :meth:`forward_features`.
            pre_logits: Return the pooled features instead of the logits.

        Returns:
            Logits (N, num_classes), or pooled features (N, num_features) if ``pre_logits``.
        """
        x = self.flatten(self.global_pool(x))
        if self.head_drop > 0.0:
            x = F.dropout(x, p=self.head_drop, training=self.training)
        return x if pre_logits else self.fc(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Maps images (N, C, H, W) to logits (N, num_classes)."""
        return self.forward_head(self.forward_features(x))


class CifarResNet(CifarClassifier):
    """Three-stage ResNet of He et al. (2016), Section 4.2, built from timm's BasicBlock.

    A 3x3 stride-1 stem with 16 channels, then three stages of ``blocks_per_stage``
    basic blocks with widths ``widths`` (the second and third stage halve the
    resolution), global average pooling and a linear classifier. The shortcut is the
    identity, or a 1x1 convolution with batch norm where stride or width changes (the
    paper's option B; its CIFAR networks used parameter-free zero-padding, option A, so
    parameter counts here are about 1% higher).
    """

    def __init__(
        self,
        blocks_per_stage: int,
        num_classes: int = 10,
        in_chans: int = 3,
        widths: tuple[int, int, int] = (16, 32, 64),
        drop_rate: float = 0.0,
        global_pool: str = "avg",
        zero_init_last: bool = False,
    ) -> None:
        """Builds the network.

        Args:
            blocks_per_stage: Basic blocks in each stage, n = (depth - 2) / 6.
            num_classes: Classifier outputs; 0 gives a model that returns pooled features.
            in_chans: Channels of the input images.
            widths: Channels of the three stages.
            drop_rate: Dropout before the classifier.
            global_pool: ``"avg"`` for global average pooling, ``""`` for none.
            zero_init_last: Start each block's last BN at weight 0 (off: the paper's init).
        """
        super().__init__()
        if blocks_per_stage < 1:
            raise ValueError(f"blocks_per_stage must be at least 1, got {blocks_per_stage}")
        self.conv1 = nn.Conv2d(in_chans, widths[0], kernel_size=3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        self.act1 = nn.ReLU(inplace=True)

        inplanes = widths[0]
        self.feature_info = [dict(num_chs=widths[0], reduction=1, module="act1")]
        for i, planes in enumerate(widths):
            stride = 1 if i == 0 else 2
            blocks = []
            for j in range(blocks_per_stage):
                s = stride if j == 0 else 1
                downsample = None
                if s != 1 or inplanes != planes:
                    downsample = nn.Sequential(
                        nn.Conv2d(inplanes, planes, kernel_size=1, stride=s, bias=False),
                        nn.BatchNorm2d(planes),
                    )
                blocks.append(BasicBlock(inplanes, planes, stride=s, downsample=downsample))
                inplanes = planes
            self.add_module(f"layer{i + 1}", nn.Sequential(*blocks))
            self.feature_info.append(dict(num_chs=planes, reduction=2**i, module=f"layer{i + 1}"))

        self._init_head(widths[-1], num_classes, global_pool, drop_rate)
        init_weights(self)
        if zero_init_last:
            for m in self.modules():
                if isinstance(m, BasicBlock):
                    m.zero_init_last()

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Maps images (N, C, H, W) to the last stage's feature map (N, num_features, H/4, W/4)."""
        x = self.act1(self.bn1(self.conv1(x)))
        x = self.layer1(x)
        x = self.layer2(x)
        return self.layer3(x)


def _cifar_resnet(name: str, depth: int, pretrained: bool, kwargs: dict[str, Any]) -> CifarResNet:
    kwargs = pop_timm_kwargs(name, pretrained, kwargs)
    if (depth - 2) % 6:
        raise ValueError(f"CIFAR ResNet depth must be 6n+2, got {depth}")
    return CifarResNet(blocks_per_stage=(depth - 2) // 6, **kwargs)


@augbench_model
def cifar_resnet8(pretrained: bool = False, **kwargs: Any) -> CifarResNet:
    """ResNet-8 (one block per stage, ~0.08M parameters): augbench's small, fast default."""
    return _cifar_resnet("cifar_resnet8", 8, pretrained, kwargs)


@augbench_model
def cifar_resnet20(pretrained: bool = False, **kwargs: Any) -> CifarResNet:
    """ResNet-20 of He et al. (2016), ~0.27M parameters."""
    return _cifar_resnet("cifar_resnet20", 20, pretrained, kwargs)


@augbench_model
def cifar_resnet32(pretrained: bool = False, **kwargs: Any) -> CifarResNet:
    """ResNet-32 of He et al. (2016), ~0.46M parameters."""
    return _cifar_resnet("cifar_resnet32", 32, pretrained, kwargs)


@augbench_model
def cifar_resnet56(pretrained: bool = False, **kwargs: Any) -> CifarResNet:
    """ResNet-56 of He et al. (2016), ~0.85M parameters."""
    return _cifar_resnet("cifar_resnet56", 56, pretrained, kwargs)


@augbench_model
def cifar_resnet110(pretrained: bool = False, **kwargs: Any) -> CifarResNet:
    """ResNet-110 of He et al. (2016), ~1.7M parameters."""
    return _cifar_resnet("cifar_resnet110", 110, pretrained, kwargs)


@augbench_model
def cifar_resnet18(pretrained: bool = False, **kwargs: Any) -> ResNet:
    """ResNet-18 (timm's ResNet class) with a 3x3 stride-1 stem and no max-pool, ~11M parameters.

    Accepts timm's ResNet keyword arguments (``drop_rate``, ``zero_init_last``, ...).
    ``zero_init_last`` defaults to False here, so every BN starts at weight 1.
    """
    kwargs = pop_timm_kwargs("cifar_resnet18", pretrained, kwargs)
    kwargs.setdefault("zero_init_last", False)
    in_chans = kwargs.pop("in_chans", 3)
    model = ResNet(block=BasicBlock, layers=(2, 2, 2, 2), in_chans=in_chans, **kwargs)
    model.conv1 = nn.Conv2d(in_chans, 64, kernel_size=3, stride=1, padding=1, bias=False)
    nn.init.kaiming_normal_(model.conv1.weight, mode="fan_out", nonlinearity="relu")
    model.maxpool = nn.Identity()
    # The stem no longer downsamples: correct the reductions timm recorded for feature extraction.
    for info in model.feature_info:
        info["reduction"] = max(1, info["reduction"] // 4)
    return model

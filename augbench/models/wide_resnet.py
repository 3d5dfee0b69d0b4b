"""Wide residual networks for small (28x28 / 32x32) images, registered into timm.

Reference:
    Zagoruyko and Komodakis (2016), "Wide Residual Networks", BMVC.
    https://arxiv.org/abs/1605.07146 -- WRN-d-k: a 3x3 stem with 16 channels, then three
    stages of (d - 4) / 6 pre-activation basic blocks (BN-ReLU-conv3x3, twice) with widths
    16k, 32k and 64k, optional dropout between the two convolutions, and a final BN-ReLU,
    global average pooling and linear classifier.

timm has no pre-activation wide basic block, so the block is defined here.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from augbench.models.cifar_resnet import CifarClassifier, augbench_model, init_weights, pop_timm_kwargs

__all__ = ["WideBasicBlock", "WideResNet"]


class WideBasicBlock(nn.Module):
    """Pre-activation wide basic block: (BN-ReLU-conv3x3) twice, with dropout in between.

    Where stride or width changes, the shortcut is a 1x1 convolution applied to the
    pre-activated input, as in the authors' implementation.
    """

    def __init__(self, inplanes: int, planes: int, stride: int = 1, drop_rate: float = 0.0) -> None:
        """Builds the block.

        Args:
            inplanes: Input channels.
            planes: Output channels.
            stride: Stride of the first convolution (and of the shortcut).
            drop_rate: Dropout probability between the two convolutions.
        """
        super().__init__()
        self.bn1 = nn.BatchNorm2d(inplanes)
        self.act1 = nn.ReLU(inplace=True)
        self.conv1 = nn.Conv2d(inplanes, planes, kernel_size=3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.act2 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, kernel_size=3, stride=1, padding=1, bias=False)
        self.drop_rate = drop_rate
        self.shortcut = None
        if stride != 1 or inplanes != planes:
            self.shortcut = nn.Conv2d(inplanes, planes, kernel_size=1, stride=stride, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Applies the block to a feature map (N, inplanes, H, W)."""
        out = self.act1(self.bn1(x))
        # A projection shortcut sees the pre-activated input; an identity shortcut the raw input.
        shortcut = x if self.shortcut is None else self.shortcut(out)
        out = self.conv1(out)
        out = self.act2(self.bn2(out))
        if self.drop_rate > 0.0:
            out = F.dropout(out, p=self.drop_rate, training=self.training)
        out = self.conv2(out)
        return out + shortcut


class WideResNet(CifarClassifier):
    """WRN-depth-widen_factor of Zagoruyko and Komodakis (2016) for small images."""

    def __init__(
        self,
        depth: int = 28,
        widen_factor: int = 10,
        num_classes: int = 10,
        in_chans: int = 3,
        drop_rate: float = 0.0,
        global_pool: str = "avg",
    ) -> None:
        """Builds the network.

        Args:
            depth: Total depth d; (d - 4) must be divisible by 6.
            widen_factor: Width multiplier k of the three stages.
            num_classes: Classifier outputs; 0 gives a model that returns pooled features.
            in_chans: Channels of the input images.
            drop_rate: Dropout probability inside each block (the paper uses 0.3 on CIFAR).
            global_pool: ``"avg"`` for global average pooling, ``""`` for none.
        """
        super().__init__()
        if (depth - 4) % 6:
            raise ValueError(f"wide ResNet depth must be 6n+4, got {depth}")
        n = (depth - 4) // 6
        widths = (16, 16 * widen_factor, 32 * widen_factor, 64 * widen_factor)
        self.drop_rate = drop_rate

        self.conv1 = nn.Conv2d(in_chans, widths[0], kernel_size=3, stride=1, padding=1, bias=False)
        self.feature_info = [dict(num_chs=widths[0], reduction=1, module="conv1")]
        inplanes = widths[0]
        for i, planes in enumerate(widths[1:]):
            stride = 1 if i == 0 else 2
            blocks = []
            for j in range(n):
                blocks.append(WideBasicBlock(inplanes, planes, stride if j == 0 else 1, drop_rate))
                inplanes = planes
            self.add_module(f"layer{i + 1}", nn.Sequential(*blocks))
            self.feature_info.append(dict(num_chs=planes, reduction=2**i, module=f"layer{i + 1}"))
        self.bn_final = nn.BatchNorm2d(inplanes)
        self.act_final = nn.ReLU(inplace=True)

        self._init_head(widths[-1], num_classes, global_pool, head_drop=0.0)
        init_weights(self)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Maps images (N, C, H, W) to the final activated feature map (N, num_features, H/4, W/4)."""
        x = self.conv1(x)
        x = self.layer1(x)
        x = self.layer2(x)
        x = self.layer3(x)
        return self.act_final(self.bn_final(x))


def _wide_resnet(
    name: str, depth: int, widen_factor: int, pretrained: bool, kwargs: dict[str, Any]
) -> WideResNet:
    kwargs = pop_timm_kwargs(name, pretrained, kwargs)
    return WideResNet(depth=depth, widen_factor=widen_factor, **kwargs)


@augbench_model
def cifar_wrn16_4(pretrained: bool = False, **kwargs: Any) -> WideResNet:
    """WRN-16-4 of Zagoruyko and Komodakis (2016), ~2.7M parameters."""
    return _wide_resnet("cifar_wrn16_4", 16, 4, pretrained, kwargs)


@augbench_model
def cifar_wrn28_10(pretrained: bool = False, **kwargs: Any) -> WideResNet:
    """WRN-28-10 of Zagoruyko and Komodakis (2016), ~36.5M parameters."""
    return _wide_resnet("cifar_wrn28_10", 28, 10, pretrained, kwargs)

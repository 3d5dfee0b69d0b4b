"""VGG networks with batch norm for small (28x28 / 32x32) images, registered into timm.

References:
    Simonyan and Zisserman (2015), "Very Deep Convolutional Networks for Large-Scale Image
    Recognition", ICLR. https://arxiv.org/abs/1409.1556 -- configurations D (VGG-16) and
    E (VGG-19).
    Ioffe and Szegedy (2015), "Batch Normalization", ICML. https://arxiv.org/abs/1502.03167
    -- a BN layer follows every convolution.

As is usual for CIFAR, the three large fully connected layers are replaced by global
average pooling and one linear layer (512 -> num_classes). Max-pooling uses
``ceil_mode=True`` so that 28x28 inputs go 28 -> 14 -> 7 -> 4 -> 2 -> 1, like 32x32 ones
go 32 -> 16 -> 8 -> 4 -> 2 -> 1.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn

from augbench.models.cifar_resnet import CifarClassifier, augbench_model, init_weights, pop_timm_kwargs

__all__ = ["CifarVGG", "VGG_CFGS"]

#: Convolution widths of the five stages; each stage ends with a 2x2 max-pool.
VGG_CFGS: dict[str, tuple[tuple[int, ...], ...]] = {
    "vgg16": ((64, 64), (128, 128), (256, 256, 256), (512, 512, 512), (512, 512, 512)),  # config D
    "vgg19": ((64, 64), (128, 128), (256,) * 4, (512,) * 4, (512,) * 4),  # config E
}


class CifarVGG(CifarClassifier):
    """VGG with batch norm, global average pooling and a single linear classifier."""

    def __init__(
        self,
        cfg: tuple[tuple[int, ...], ...],
        num_classes: int = 10,
        in_chans: int = 3,
        drop_rate: float = 0.0,
        global_pool: str = "avg",
    ) -> None:
        """Builds the network.

        Args:
            cfg: Convolution widths per stage (see ``VGG_CFGS``); a max-pool follows each stage.
            num_classes: Classifier outputs; 0 gives a model that returns pooled features.
            in_chans: Channels of the input images.
            drop_rate: Dropout before the classifier.
            global_pool: ``"avg"`` for global average pooling, ``""`` for none.
        """
        super().__init__()
        layers: list[nn.Module] = []
        self.feature_info = []
        chans = in_chans
        for i, stage in enumerate(cfg):
            for width in stage:
                layers += [nn.Conv2d(chans, width, kernel_size=3, padding=1), nn.BatchNorm2d(width)]
                layers.append(nn.ReLU(inplace=True))
                chans = width
            self.feature_info.append(
                dict(num_chs=chans, reduction=2**i, module=f"features.{len(layers) - 1}")
            )
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2, ceil_mode=True))
        self.features = nn.Sequential(*layers)
        self._init_head(chans, num_classes, global_pool, drop_rate)
        init_weights(self)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Maps images (N, C, H, W) to the last feature map (N, 512, 1, 1 for 28x28 or 32x32)."""
        return self.features(x)


def _vgg(name: str, cfg: str, pretrained: bool, kwargs: dict[str, Any]) -> CifarVGG:
    kwargs = pop_timm_kwargs(name, pretrained, kwargs)
    return CifarVGG(VGG_CFGS[cfg], **kwargs)


@augbench_model
def cifar_vgg16_bn(pretrained: bool = False, **kwargs: Any) -> CifarVGG:
    """VGG-16 (configuration D) with batch norm, ~14.7M parameters."""
    return _vgg("cifar_vgg16_bn", "vgg16", pretrained, kwargs)


@augbench_model
def cifar_vgg19_bn(pretrained: bool = False, **kwargs: Any) -> CifarVGG:
    """VGG-19 (configuration E) with batch norm, ~20.0M parameters."""
    return _vgg("cifar_vgg19_bn", "vgg19", pretrained, kwargs)

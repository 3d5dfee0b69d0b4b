"""Any Albumentations transform, by its class name and arguments.

Buslaev, Iglovikov, Khvedchenya, Parinov, Druzhinin & Kalinin,
"Albumentations: Fast and Flexible Image Augmentations", Information 11(2),
2020. In a recipe::

    - {op: albumentations, transform: CoarseDropout, args: {num_holes_range: [1, 1]}}

Albumentations 2.x draws from each transform's own generators, not from the
global ones, so every call reseeds the transform from torch's global
generator (which the loader seeds per batch): views stay reproducible from
(seed, epoch, batch). Images go through as ``H x W x C`` uint8 numpy arrays.
"""

from __future__ import annotations

import difflib
import functools
import inspect
from types import ModuleType
from typing import Any

import numpy as np
import torch

from augbench.augment.ops import OpArgumentError, register_op, require


@functools.cache
def _albumentations() -> ModuleType:
    # lazy: importing Albumentations adds about 1 s to every start of augbench here (5 s without it), and only
    # recipes that name one of its transforms need it
    import albumentations

    return albumentations


def transform_names() -> list[str]:
    """Names of the Albumentations classes usable as a per-image transform."""
    return sorted(name for name in dir(_albumentations()) if _transform_class(name) is not None)


def _transform_class(name: str) -> type | None:
    albumentations = _albumentations()
    cls = getattr(albumentations, name, None)
    if isinstance(cls, type) and issubclass(cls, albumentations.BasicTransform) and not inspect.isabstract(cls):
        return cls
    return None


def _keyword_parameters(cls: type) -> list[str]:
    kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return [name for name, p in inspect.signature(cls.__init__).parameters.items()
            if name != "self" and p.kind in kinds]


@register_op("albumentations")
class AlbumentationsTransform:
    """An Albumentations transform ``transform`` built with ``args``."""

    def __init__(self, transform: str, args: dict[str, Any] | None = None):
        cls = _transform_class(transform)
        if cls is None:
            close = difflib.get_close_matches(transform, transform_names(), n=3)
            hint = f" (did you mean {', '.join(close)}?)" if close else ""
            raise OpArgumentError("transform", transform,
                                  f"the class name of an Albumentations image transform, e.g. HorizontalFlip, "
                                  f"Affine, CoarseDropout{hint}")
        args = dict(args or {})
        accepted = _keyword_parameters(cls)
        for key in args:
            require(key in accepted, f"args.{key}", args[key],
                    f"the arguments of albumentations.{transform}: {', '.join(accepted)}")
        try:
            self.transform = cls(**args)
        except (ValueError, TypeError) as err:
            key, message = None, str(err).strip().splitlines()[0]
            # Albumentations re-raises pydantic's ValidationError, which says which argument is wrong.
            detail = next((e for e in (err, err.__cause__) if callable(getattr(e, "errors", None))), None)
            if detail is not None and detail.errors():
                first = detail.errors()[0]
                key = str(first["loc"][0]) if first.get("loc") else None
                message = first.get("msg", message)
            raise OpArgumentError(f"args.{key}" if key else "args", args.get(key, args),
                                  f"what albumentations.{transform} accepts ({message})") from None
        self.name, self.args = transform, args

    def __call__(self, img: torch.Tensor) -> torch.Tensor:
        self.transform.set_random_seed(int(torch.randint(0, 2**31 - 1, ()).item()))
        out = self.transform(image=np.ascontiguousarray(img.permute(1, 2, 0).numpy()))["image"]
        if out.ndim == 2:  # some OpenCV calls drop a single channel axis
            out = out[:, :, None]
        return torch.from_numpy(np.ascontiguousarray(out)).permute(2, 0, 1).contiguous()

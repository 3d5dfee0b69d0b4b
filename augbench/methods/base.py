"""What a training method is: its loss, its state across steps, and what it needs from the loader.

The engine drives any registered method through this interface and never names
one. A method sees the model and the batch it is given, nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

import torch
from torch import nn

from augbench import schema
from augbench.errors import FieldError, UsageError


class Mixer(Protocol):
    """Batch mixing (Mixup/CutMix) as the recipe system provides it.

    ``sample`` draws the mixing of one batch (partner permutation, lambda,
    box); ``apply`` mixes images and turns labels into probability targets
    with those exact parameters, so a method can replay a mixing later.
    ``labels`` are int64 class labels ``[n]`` or probability targets
    ``[n, classes]``, mixed linearly like one-hot labels (PS-KD mixes its
    soft targets).
    """

    def sample(self, batch_size: int, image_size: tuple[int, int]) -> Any: ...

    def apply(self, images: torch.Tensor, labels: torch.Tensor, params: Any) -> tuple[torch.Tensor, torch.Tensor]: ...


@dataclass
class Batch:
    """One training batch as the loader produced it, on the training device.

    Attributes:
        views: independently augmented, normalized views of the same samples, on the training device
            (float32, or bfloat16 under ``--bf16``), as many as the method asked for (``Method.num_views``).
        labels: int64 class labels ``[n]`` (after any label noise).
        index: int64 positions of the samples in the training set ``[n]``.
        mixer: the recipe's batch mixing, or None when the recipe mixes nothing.
        mix_policy: how a method that replays samples mixes the replay
            (``shared``, ``independent`` or ``clean``; see DLB).
    """

    views: list[torch.Tensor]
    labels: torch.Tensor
    index: torch.Tensor
    mixer: Mixer | None = None
    mix_policy: str = "shared"

    def mix(self, images: torch.Tensor, labels: torch.Tensor, params: Any = None):
        """Mixes ``images`` with the batch mixer; returns ``(images, targets, params)``.

        Without a mixer the images come back as they are and the targets are
        the hard labels. ``params=None`` draws a fresh mixing.
        """
        if self.mixer is None:
            return images, labels, None
        if params is None:
            params = self.mixer.sample(images.shape[0], tuple(images.shape[-2:]))
        mixed, targets = self.mixer.apply(images, labels, params)
        return mixed, targets, params


@dataclass
class StepOutput:
    """What one method step returns to the engine.

    Attributes:
        loss: the scalar to back-propagate.
        logits: logits of the current batch (for the running train accuracy).
        labels: the labels ``logits`` are scored against.
        forward_samples: samples forwarded through the model in this step.
        parts: named loss components for logging, as detached 0-d tensors on the device (the engine
            sums them there and reads them once per epoch: a method never reads a value back per step).
    """

    loss: torch.Tensor
    logits: torch.Tensor
    labels: torch.Tensor
    forward_samples: int
    parts: dict[str, torch.Tensor] = field(default_factory=dict)


class Method:
    """Base class of a training method.

    Subclasses set ``name``, ``defaults`` (argument name -> default value; the
    type of the default is the accepted type) and optionally ``choices``,
    ``num_views``, ``forward_passes_per_sample`` and ``sampler``, then
    implement ``step``.
    """

    name: ClassVar[str]
    #: Views per sample the loader must produce.
    num_views: ClassVar[int] = 1
    #: How often each new training sample is forwarded per epoch (DLB: 2).
    forward_passes_per_sample: ClassVar[int] = 1
    #: Name of a batch sampler in ``augbench.data.samplers`` (None: shuffled batches).
    sampler: ClassVar[str | None] = None
    #: Whether ``step`` needs ``Batch.index``.
    needs_index: ClassVar[bool] = False
    defaults: ClassVar[dict[str, Any]] = {}
    choices: ClassVar[dict[str, tuple]] = {}

    def __init__(self, num_classes: int, **args: Any):
        self.num_classes = num_classes
        self.args = resolve_args(type(self), args)
        for key, value in self.args.items():
            setattr(self, key, value)

    def check_arg(self, key: str, ok: bool, accepted: str) -> None:
        """Raises UsageError naming the argument when ``ok`` is false (a value out of its range)."""
        if not ok:
            raise FieldError("method_args", f"--method-arg {key}={self.args[key]}: method '{self.name}' accepts {key} {accepted}")

    def setup(self, num_train: int, device: torch.device) -> None:
        """Called once before training with the training-set size and the device."""

    def on_epoch_start(self, epoch: int, num_epochs: int) -> None:
        """Called before each epoch (0-based)."""

    def on_epoch_end(self, epoch: int, num_epochs: int) -> None:
        """Called after each epoch's last step."""

    def step(self, model: nn.Module, batch: Batch) -> StepOutput:
        raise NotImplementedError

    def state_dict(self) -> dict[str, Any]:
        """State that must survive a checkpoint and resume."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        del state


def _coerce(method: str, key: str, value: Any, default: Any) -> Any:
    """``value`` as argument ``key`` holds it: the type of its default (``augbench.schema``), or text from a flag."""
    kind = type(default)
    if isinstance(value, str) and kind is not str:  # --method-arg KEY=VALUE gives text
        text = value.strip()
        try:
            if kind is bool:
                if text.lower() not in ("true", "false", "1", "0", "yes", "no"):
                    raise ValueError
                return text.lower() in ("true", "1", "yes")
            return kind(text)
        except ValueError:
            raise UsageError(
                f"--method-arg {key}={value}: method '{method}' expects {schema.describe(kind)} for '{key}'"
            ) from None
    typed = schema.coerce(value, kind)
    if typed is schema.INVALID:
        raise UsageError(f"method '{method}' argument '{key}': got {value!r}; accepted: {schema.describe(kind)}")
    return typed


def resolve_args(cls: type[Method], given: dict[str, Any]) -> dict[str, Any]:
    """Validates method arguments against ``cls.defaults``/``cls.choices``; returns the full set."""
    unknown = sorted(set(given) - set(cls.defaults))
    if unknown:
        accepted = ", ".join(sorted(cls.defaults)) or "none"
        raise UsageError(
            f"--method-arg {unknown[0]}: method '{cls.name}' has no argument '{unknown[0]}' (accepted: {accepted})"
        )
    resolved = dict(cls.defaults)
    for key, value in given.items():
        resolved[key] = _coerce(cls.name, key, value, cls.defaults[key])
    for key, allowed in cls.choices.items():
        if resolved[key] not in allowed:
            raise UsageError(
                f"--method-arg {key}={resolved[key]}: method '{cls.name}' accepts {key} in {', '.join(map(str, allowed))}"
            )
    return resolved

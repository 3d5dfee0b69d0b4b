"""The image operations of AutoAugment, RandAugment and TrivialAugment on whole batches.

Each operation takes a uint8 ``[B, C, H, W]`` batch and one magnitude per
sample (a float tensor ``[B]``, already signed) and computes what
torchvision's ``_AutoAugmentBase._apply_image_or_video_transform``
(``torchvision/transforms/v2/_auto_augment.py``) computes for one image at
that magnitude: the same formulas, from ``torchvision/transforms/v2/
functional/_color.py`` and ``_geometry.py``, with the scalar factor replaced
by a per-sample tensor. Nothing is read back to the host.

- **Geometric** operations (ShearX, ShearY, TranslateX, TranslateY, Rotate)
  are one affine warp: each sample's inverse matrix is torchvision's
  ``_get_inverse_affine_matrix``, its sampling grid ``_affine_grid``, and one
  ``grid_sample`` (nearest, as the policies use) serves the whole batch.
- **Pixel** operations (Brightness, Color, Contrast, Sharpness, Posterize,
  Solarize, AutoContrast, Equalize, Invert) are registered in
  :data:`PIXEL_OPS`. The blends do torchvision's float32 arithmetic in the
  same order (a multiply, then a fused multiply-add) and truncate to uint8 as
  it does, so the outputs equal torchvision's pixel for pixel
  (``tests/test_policy_ops.py`` compares every operation at several
  magnitudes).

:func:`apply_ops` gives every sample its own operation in one pass: every
operation the policy uses is computed on the batch and each sample keeps its
own (a selection on the device, so there is no host synchronisation).
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torchvision.transforms.v2 import functional as TF

from augbench.augment.ops import constant
from augbench.registry import add

PixelOp = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
#: name (torchvision's) -> ``(images uint8 [B, C, H, W], magnitude float [B]) -> images``.
PIXEL_OPS: dict[str, PixelOp] = {}
#: The pixel operations whose output value depends only on the input value and the magnitude (a lookup table).
PER_VALUE: set[str] = set()
IDENTITY = "Identity"


def register_pixel_op(name: str, per_value: bool = False):
    def wrap(fn: PixelOp) -> PixelOp:
        add(PIXEL_OPS, name, fn, "policy operation")
        if per_value:
            PER_VALUE.add(name)
        return fn
    return wrap


def _per_sample(values: torch.Tensor) -> torch.Tensor:
    return values.view(-1, 1, 1, 1)


def _to_uint8(values: torch.Tensor) -> torch.Tensor:
    """Clamp to [0, 255] and truncate, as torchvision's ``_blend`` converts."""
    return values.clamp_(0, 255).to(torch.uint8)


def _factor(magnitude: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``1 + m`` and ``1 - (1 + m)`` per sample, as torchvision computes them (in float64, then float32)."""
    factor = 1.0 + magnitude.double()
    return _per_sample(factor.float()), _per_sample((1.0 - factor).float())


def _blend(images: torch.Tensor, degenerate: torch.Tensor, magnitude: torch.Tensor) -> torch.Tensor:
    """``factor * images + (1 - factor) * degenerate`` per sample, ``factor = 1 + m`` (torchvision's ``_blend``)."""
    factor, rest = _factor(magnitude)
    return _to_uint8(images.float().mul_(factor).addcmul_(degenerate.expand_as(images), rest))


def _grayscale(images: torch.Tensor) -> torch.Tensor:
    """float ``[B, 1, H, W]``: ITU-R 601-2 luma, floored (``_rgb_to_grayscale_image`` on uint8)."""
    r, g, b = images.float().unbind(dim=-3)
    return r.mul(0.2989).add_(g, alpha=0.587).add_(b, alpha=0.114).unsqueeze(-3).floor_()


@register_pixel_op("Brightness", per_value=True)
def brightness(images: torch.Tensor, magnitude: torch.Tensor) -> torch.Tensor:
    """``adjust_brightness(image, 1 + m)``: the image scaled by ``1 + m``."""
    return _to_uint8(images.float().mul_(_factor(magnitude)[0]))


@register_pixel_op("Color")
def color(images: torch.Tensor, magnitude: torch.Tensor) -> torch.Tensor:
    """``adjust_saturation(image, 1 + m)``: a blend with the image's grayscale (a grayscale image is unchanged)."""
    if images.shape[-3] == 1:
        return images
    return _blend(images, _grayscale(images), magnitude)


@register_pixel_op("Contrast")
def contrast(images: torch.Tensor, magnitude: torch.Tensor) -> torch.Tensor:
    """``adjust_contrast(image, 1 + m)``: a blend with the mean of the image's grayscale."""
    gray = _grayscale(images) if images.shape[-3] == 3 else images.float()
    return _blend(images, gray.mean(dim=(-3, -2, -1), keepdim=True), magnitude)


@register_pixel_op("Sharpness")
def sharpness(images: torch.Tensor, magnitude: torch.Tensor) -> torch.Tensor:
    """``adjust_sharpness(image, 1 + m)``: interior pixels blended with a 3x3 smoothing (1s around a 5, /13).

    The smoothing is summed exactly (integers in float32), ``(sum of the 3x3 block + 4 * centre) / 13``, the
    block as three columns of row sums, and rounded: the same value as torchvision's float32 convolution,
    because a multiple of 1/13 is never within rounding error of a half.
    """
    b, c, h, w = images.shape
    if h <= 2 or w <= 2:
        return images
    output = images.float()
    rows = output[..., :, :-2] + output[..., :, 1:-1] + output[..., :, 2:]
    block = rows[..., :-2, :] + rows[..., 1:-1, :] + rows[..., 2:, :]
    inner = output[..., 1:-1, 1:-1]
    blurred = block.add_(inner, alpha=4).div_(13.0).round_()
    inner.addcmul_(blurred.sub_(inner), _factor(magnitude)[1])
    return _to_uint8(output)


@register_pixel_op("Posterize", per_value=True)
def posterize(images: torch.Tensor, magnitude: torch.Tensor) -> torch.Tensor:
    """``posterize(image, int(m))``: keep the ``m`` highest bits of every value."""
    bits = magnitude.to(torch.int64).clamp(0, 8)
    mask = ((1 << bits) - 1) << (8 - bits)
    return images & _per_sample(mask.to(torch.uint8))


@register_pixel_op("Solarize", per_value=True)
def solarize(images: torch.Tensor, magnitude: torch.Tensor) -> torch.Tensor:
    """``solarize(image, 255 * m)``: values at or above the threshold inverted."""
    threshold = _per_sample((255.0 * magnitude.double()).float())
    return torch.where(images >= threshold, images.bitwise_not(), images)


@register_pixel_op("AutoContrast")
def autocontrast(images: torch.Tensor, magnitude: torch.Tensor) -> torch.Tensor:
    """Each channel stretched to [0, 255] (torchvision's kernel, which works on batches)."""
    return TF.autocontrast_image(images)


@register_pixel_op("Equalize")
def equalize(images: torch.Tensor, magnitude: torch.Tensor) -> torch.Tensor:
    """Each channel's histogram equalised, PIL's way: torchvision's ``equalize_image`` for uint8, in fewer steps.

    With ``hist`` the channel's histogram, ``cum`` its cumulative sum and ``step = (pixels - count of the
    highest value present) // 255``, value ``v`` becomes ``(cum[v - 1] + step // 2) // step`` clamped to 255
    (0 for ``v = 0``); a channel with ``step == 0`` stays as it is.
    """
    b, c, h, w = images.shape
    flat = images.reshape(b * c, h * w).long()
    hist = torch.zeros(b * c, 256, dtype=torch.int64, device=images.device)
    hist.scatter_add_(1, flat, constant([1], torch.int64, images.device).expand_as(flat))
    cum = hist.cumsum(1)
    step = (h * w - hist.gather(1, cum.argmax(1, keepdim=True))).div_(255, rounding_mode="floor")
    table = cum[:, :-1].add(step // 2).div_(step.clamp(min=1), rounding_mode="floor").clamp_(0, 255)
    table = torch.cat([torch.zeros_like(table[:, :1]), table], dim=1)
    identity = constant(range(256), torch.int64, images.device).view(1, 256)
    table = torch.where(step != 0, table, identity).to(torch.uint8)
    return table.gather(1, flat).view(b, c, h, w)


@register_pixel_op("Invert", per_value=True)
def invert(images: torch.Tensor, magnitude: torch.Tensor) -> torch.Tensor:
    return images.bitwise_not()


# -- geometric -------------------------------------------------------------------------------------

def _shear(m: torch.Tensor) -> torch.Tensor:
    """torchvision's shear angle for magnitude ``m``: ``degrees(atan(m))``, back in radians."""
    return torch.deg2rad(torch.rad2deg(torch.atan(m)))


#: name -> ``(magnitude float64 [B], h, w) -> {argument: value}``: the arguments torchvision's policies pass to
#: ``affine`` / ``rotate`` for that operation (angles in radians; the centre relative to the image's centre).
GEOMETRY: dict[str, Callable[..., dict]] = {
    # shears about the top-left corner (center [0, 0] in pixels)
    "ShearX": lambda m, h, w: {"shear_x": _shear(m), "cx": -0.5 * w, "cy": -0.5 * h},
    "ShearY": lambda m, h, w: {"shear_y": _shear(m), "cx": -0.5 * w, "cy": -0.5 * h},
    "TranslateX": lambda m, h, w: {"tx": torch.trunc(m)},  # int(magnitude) pixels
    "TranslateY": lambda m, h, w: {"ty": torch.trunc(m)},
    # rotate() takes angle % 360 and passes -angle to the affine matrix
    "Rotate": lambda m, h, w: {"angle": torch.deg2rad(-torch.remainder(m, 360.0))},
}
#: The geometric operations, done together by one affine warp (:func:`affine`).
GEOMETRIC = tuple(GEOMETRY)


def inverse_affine_matrices(angle, tx, ty, shear_x, shear_y, cx, cy) -> torch.Tensor:
    """float64 ``[B, 2, 3]``: torchvision's ``_get_inverse_affine_matrix`` at scale 1, one matrix per sample.

    Angles in radians; ``(cx, cy)`` is the centre relative to the image's centre.
    """
    cos_sy, tan_sx = torch.cos(shear_y), torch.tan(shear_x)
    a = torch.cos(angle - shear_y) / cos_sy
    b = -(a * tan_sx + torch.sin(angle))
    c = torch.sin(angle - shear_y) / cos_sy
    d = torch.cos(angle) - c * tan_sx
    m0, m1, m3, m4 = d, -b, -c, a
    m2 = cx - m0 * (cx + tx) - m1 * (cy + ty)
    m5 = cy - m3 * (cx + tx) - m4 * (cy + ty)
    return torch.stack([m0, m1, m2, m3, m4, m5], dim=-1).view(-1, 2, 3)


def affine_grid(op_ids: torch.Tensor, magnitude: torch.Tensor, names: list[str], h: int, w: int) -> torch.Tensor:
    """float32 ``[B, H, W, 2]``: each sample's sampling grid for its geometric operation (the identity grid for
    any other), as torchvision's ``_affine_grid`` builds it."""
    b, device = len(op_ids), op_ids.device
    zeros = torch.zeros(b, dtype=torch.float64, device=device)
    args = {key: zeros.clone() for key in ("angle", "tx", "ty", "shear_x", "shear_y", "cx", "cy")}
    for index, name in enumerate(names):
        if name not in GEOMETRIC:
            continue
        chosen = op_ids == index
        for key, value in GEOMETRY[name](magnitude.double(), h, w).items():
            args[key] = torch.where(chosen, value if torch.is_tensor(value) else zeros + value, args[key])
    theta = inverse_affine_matrices(**args).float()
    # torchvision's _affine_grid: pixel-centre coordinates, the matrix applied, then normalised to [-1, 1].
    # (x, y, 1) . theta row, summed in that order (as a batched matrix product sums it, without its cost).
    x = torch.linspace((1.0 - w) * 0.5, (w - 1.0) * 0.5, steps=w, device=device).view(1, 1, w)
    y = torch.linspace((1.0 - h) * 0.5, (h - 1.0) * 0.5, steps=h, device=device).view(1, h, 1)
    t = theta.div(constant([0.5 * w, 0.5 * h], torch.float32, device).view(1, 2, 1)).view(b, 2, 3, 1, 1)
    return torch.stack([x * t[:, i, 0] + y * t[:, i, 1] + t[:, i, 2] for i in range(2)], dim=-1)


def affine(images: torch.Tensor, op_ids: torch.Tensor, magnitude: torch.Tensor, names: list[str],
           fill: list[int]) -> torch.Tensor:
    """Every sample whose operation is geometric warped by it (nearest), the others unchanged.

    Uncovered pixels take ``fill`` (one value per channel), as
    ``_apply_grid_transform`` fills them: through a coverage channel.
    """
    b, c, h, w = images.shape
    grid = affine_grid(op_ids, magnitude, names, h, w)
    float_images = images.float()
    filled = any(fill)
    if filled:
        float_images = torch.cat([float_images, torch.ones_like(float_images[:, :1])], dim=1)
    warped = F.grid_sample(float_images, grid, mode="nearest", padding_mode="zeros", align_corners=False)
    if filled:
        warped, covered = warped[:, :c], warped[:, c:]
        fill_values = constant(fill, warped.dtype, images.device).view(1, c, 1, 1)
        warped = torch.where(covered < 0.5, fill_values.expand_as(warped), warped)
    return warped.round_().to(torch.uint8)


def _source_pixels(names: tuple[str, ...], h: int, w: int, op_id: int, magnitude: float, device: str) -> torch.Tensor:
    """int64 ``[H * W]``: the input pixel (row-major) that each output pixel of geometric operation
    ``names[op_id]`` at ``magnitude`` takes, ``H * W`` where it is uncovered.

    Nearest sampling copies one input pixel to each output pixel, so warping an image that holds each pixel's
    own index (and a coverage channel) with :func:`affine_grid`'s grid finds that pixel exactly.
    """
    grid = affine_grid(torch.tensor([op_id], device=device), torch.tensor([magnitude], dtype=torch.float64, device=device),
                       list(names), h, w)
    index = torch.arange(h * w, dtype=torch.float32, device=device).view(1, 1, h, w)
    source = F.grid_sample(torch.cat([index, torch.ones_like(index)], dim=1), grid, mode="nearest",
                           padding_mode="zeros", align_corners=False)[0]
    return torch.where(source[1] < 0.5, h * w, source[0].round()).long().view(-1)


def _value_table(name: str, magnitude: float, dtype: torch.dtype, device: str) -> torch.Tensor:
    """uint8 ``[256]``: what per-value operation ``name`` at ``magnitude`` makes of each value 0-255 (the operation
    itself, run on an image holding every value once, so the table is exact)."""
    values = torch.arange(256, device=device).to(torch.uint8).view(1, 1, 1, 256)
    return PIXEL_OPS[name](values, torch.tensor([magnitude], dtype=dtype, device=device)).view(256)


class _Maps:
    """The maps of one policy's operations at one image size: row ``k`` of ``positions`` (int64 ``[K, H * W]``)
    and of ``values`` (uint8 ``[K, 256]``) belong to one ``(operation, magnitude)``; row 0 is the identity.

    The policies draw their magnitudes from a table, so a policy has a few hundred rows at most; a new row is
    made the first time its operation and magnitude are drawn (past :data:`LIMIT` rows, the maps start again).
    """

    LIMIT = 4096

    def __init__(self, names: tuple[str, ...], h: int, w: int, device: str):
        self.names, self.h, self.w, self.device = names, h, w, device
        self._clear()

    def _clear(self):
        self.rows: dict[tuple, int] = {}
        self.geometric: list[bool] = [False]
        self._positions = [torch.arange(self.h * self.w, device=self.device)]
        self._values = [torch.arange(256, device=self.device).to(torch.uint8)]
        self.positions, self.values = torch.stack(self._positions), torch.stack(self._values)

    def rows_of(self, op_ids: list[int], magnitudes: list[float], dtype: torch.dtype) -> list[int]:
        """Each sample's row, made where it is new."""
        rows, added = [], False
        for op_id, m in zip(op_ids, magnitudes):
            row = self.rows.get((op_id, m, dtype))
            if row is None:
                if len(self.rows) >= self.LIMIT:
                    self._clear()
                    return self.rows_of(op_ids, magnitudes, dtype)
                row = self.rows[op_id, m, dtype] = len(self._positions)
                geometric = self.names[op_id] in GEOMETRIC
                self.geometric.append(geometric)
                self._positions.append(_source_pixels(self.names, self.h, self.w, op_id, m, self.device)
                                       if geometric else self._positions[0])
                self._values.append(self._values[0] if geometric
                                    else _value_table(self.names[op_id], m, dtype, self.device))
                added = True
            rows.append(row)
        if added:
            self.positions, self.values = torch.stack(self._positions), torch.stack(self._values)
        return rows


@functools.cache
def _maps(names: tuple[str, ...], h: int, w: int, device: str) -> _Maps:
    return _Maps(names, h, w, device)


def map_pixels(images: torch.Tensor, op_ids: torch.Tensor, magnitude: torch.Tensor, names: list[str],
               fill: list[int]) -> torch.Tensor:
    """Every geometric and per-value operation (:data:`PER_VALUE`) by at most two gathers through cached maps.

    A geometric operation at a given magnitude always moves the same pixels (:func:`_source_pixels`); a
    per-value one always maps a value to the same value (:func:`_value_table`). Each sample reads its pixels
    through its position map (uncovered ones from a fill column), then its values through its value table,
    the identity for the kind of map its operation does not have (:class:`_Maps`): the same pixels as
    :func:`affine` and the pixel operations. It reads the operations and magnitudes back to the host, so only
    the grouped (CPU) path uses it; there it replaces about a hundred small tensor operations per call.
    """
    b, c, h, w = images.shape
    maps = _maps(tuple(names), h, w, str(images.device))
    rows = maps.rows_of(op_ids.tolist(), magnitude.tolist(), magnitude.dtype)
    geometric = [maps.geometric[row] for row in rows]
    index = torch.tensor(rows, device=images.device)
    if any(geometric):
        fill_column = constant(fill, torch.uint8, images.device).view(1, c, 1).expand(b, c, 1)
        padded = torch.cat([images.reshape(b, c, h * w), fill_column], dim=2)
        positions = maps.positions[index].view(b, 1, h * w).expand(b, c, h * w)
        images = padded.gather(2, positions).view(b, c, h, w)
    if not all(geometric):
        images = maps.values[index].gather(1, images.reshape(b, c * h * w).long()).view(b, c, h, w)
    return images


@functools.cache
def _kernels(names: tuple[str, ...], grouped: bool) -> tuple[list[tuple[Callable, list[int]]], torch.Tensor]:
    """``[(kernel(images, op_ids, magnitude, fill), op ids it serves), ...]`` and each op id's group: 0 for
    ``Identity`` (no kernel), k for the k-th kernel. Made once per policy, not at every step.

    Not ``grouped``: one affine warp for every geometric op, one kernel per pixel op. ``grouped``: one
    :func:`map_pixels` for every geometric and per-value op, one kernel per other pixel op.
    """
    kernels: list[tuple[Callable, list[int]]] = []
    mapped = [k for k, name in enumerate(names) if name in GEOMETRIC or (grouped and name in PER_VALUE)]
    warp = map_pixels if grouped else affine
    if mapped:
        kernels.append((lambda images, op_ids, magnitude, fill: warp(images, op_ids, magnitude, names, fill),
                        mapped))
    for index, name in enumerate(names):
        if index in mapped:
            continue
        if name in PIXEL_OPS:
            kernels.append((lambda images, op_ids, magnitude, fill, op=PIXEL_OPS[name]: op(images, magnitude),
                            [index]))
        elif name != IDENTITY and name not in GEOMETRIC:
            raise KeyError(f"policy operation {name!r}; known: {', '.join((IDENTITY, *GEOMETRIC, *PIXEL_OPS))}")
    group_of = torch.zeros(len(names), dtype=torch.long)
    for group, (_, served) in enumerate(kernels, start=1):
        group_of[served] = group
    return kernels, group_of


def apply_ops(images: torch.Tensor, op_ids: torch.Tensor, magnitude: torch.Tensor, names: list[str],
              fill: list[int], grouped: bool | None = None) -> torch.Tensor:
    """Sample ``i`` gets operation ``names[op_ids[i]]`` at ``magnitude[i]``; ``Identity`` leaves it as it is.

    Two ways to the same result:

    - ``grouped`` (the default on a CPU): the batch is sorted by operation and
      each kernel runs on its own samples only. The group sizes are read once
      per call; on a CPU that costs nothing, and the work is one operation per
      sample instead of every operation on every sample.
    - not grouped (the default on an accelerator): every kernel runs on the
      whole batch and each sample keeps its own output (``torch.where``), with
      no read back to the host.
    """
    if grouped is None:
        grouped = images.device.type == "cpu"
    kernels, group_of = _kernels(tuple(names), grouped)
    if not grouped:
        out = images
        for kernel, served in kernels:
            chosen = torch.isin(op_ids, constant(served, torch.long, op_ids.device))
            out = torch.where(_per_sample(chosen), kernel(images, op_ids, magnitude, fill), out)
        return out
    groups = group_of.to(op_ids.device)[op_ids]
    order = torch.argsort(groups, stable=True)
    sizes = torch.bincount(groups, minlength=len(kernels) + 1).tolist()
    images_, op_ids_, magnitude_ = images[order], op_ids[order], magnitude[order]
    pieces = [images_[:sizes[0]]]  # group 0: Identity, left as it is
    start = sizes[0]
    for (kernel, _), size in zip(kernels, sizes[1:]):
        if size:
            end = start + size
            pieces.append(kernel(images_[start:end], op_ids_[start:end], magnitude_[start:end], fill))
        start += size
    out = torch.empty_like(images)
    out[order] = torch.cat(pieces)
    return out


def apply_steps(images: torch.Tensor, steps: list[tuple[torch.Tensor, torch.Tensor]], names: list[str],
                fill: list[int], grouped: bool | None = None) -> torch.Tensor:
    """:func:`apply_ops` for each ``(op_ids, magnitude)`` of a policy's steps, in order."""
    for op_ids, magnitude in steps:
        images = apply_ops(images, op_ids, magnitude, names, fill, grouped)
    return images


class CapturedApply:
    """:func:`apply_ops` over all of a policy's steps on CUDA, replayed from a CUDA graph.

    On an accelerator :func:`apply_ops` launches every operation's kernels on
    the whole batch: about 530 small kernels per AutoAugment call. The host
    takes longer to launch them than the GPU takes to run them (measured on an
    H200 at 512 images: 6.5 ms of launching, 2.7 ms of GPU work). A CUDA graph
    captures the same kernels once per input shape and launches them in one
    call. The kernels and their arithmetic are the same, so the pixels are the
    same (``scripts/device_check.py`` compares the two on a GPU).

    The graph reads its inputs from fixed buffers and writes a fixed output,
    so each call copies the batch and its draws in and the result out.
    """

    def __init__(self):
        self._graphs: dict[tuple, tuple] = {}

    def __call__(self, images: torch.Tensor, steps: list[tuple[torch.Tensor, torch.Tensor]], names: list[str],
                 fill: list[int]) -> torch.Tensor:
        key = (tuple(images.shape), images.stride(), images.dtype, str(images.device), tuple(names), tuple(fill),
               tuple((ids.dtype, mag.dtype) for ids, mag in steps))
        if key not in self._graphs:
            self._graphs[key] = self._capture(images, steps, names, fill)
        graph, static_images, static_steps, out = self._graphs[key]
        static_images.copy_(images)
        for (ids, mag), (static_ids, static_mag) in zip(steps, static_steps):
            static_ids.copy_(ids)
            static_mag.copy_(mag)
        graph.replay()
        return out.clone()

    def _capture(self, images, steps, names, fill):
        static_images = images.clone()
        static_steps = [(ids.clone(), mag.clone()) for ids, mag in steps]
        side = torch.cuda.Stream(images.device)
        side.wait_stream(torch.cuda.current_stream(images.device))
        with torch.cuda.stream(side):  # warm-up: fills the constant and kernel caches outside the capture
            apply_steps(static_images, static_steps, names, fill, grouped=False)
        torch.cuda.current_stream(images.device).wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph, capture_error_mode="thread_local"):
            out = apply_steps(static_images, static_steps, names, fill, grouped=False)
        return graph, static_images, static_steps, out


__all__ = ["GEOMETRIC", "IDENTITY", "PER_VALUE", "PIXEL_OPS", "CapturedApply", "affine", "affine_grid", "apply_ops", "apply_steps",
           "inverse_affine_matrices", "map_pixels"]

"""Generated data sets: deterministic, small and learnable; for tests and smoke
runs where no real data set is at hand."""

from __future__ import annotations

import numpy as np

from augbench.data.registry import ImageDataset, make_dataset, register_dataset

SYNTHETIC_SEED = 20240611
# Class textures: (period in pixels, angle in degrees) of a plaid of two gratings at +angle and -angle.
_SYNTH_TEXTURES = [(p, a) for p in (7.0, 12.0) for a in (0.0, 30.0, 45.0, 60.0, 90.0)]


def make_synthetic(
    n_train: int = 2000,
    n_test: int = 1000,
    channels: int = 3,
    size: int = 32,
    seed: int = SYNTHETIC_SEED,
    name: str = "synthetic",
) -> ImageDataset:
    """A small, learnable, deterministic 10-class image problem.

    Each class has a base colour and a smooth periodic texture: a plaid of two
    cosine gratings at angles +a and -a with a class-specific period (7 or 12
    pixels) and angle (0, 30, 45, 60 or 90 degrees).  The plaid is mirror
    symmetric, so a horizontal flip leaves the class unchanged, and each image
    draws its own random grating phases, so a shift of a few pixels (a random
    crop) gives another image of the same class.  Per image the colour is
    jittered, the texture amplitude is drawn from ``U(0, 0.4)`` (images with a
    faint texture are genuinely hard) and Gaussian pixel noise is added: a
    small CNN gets well above chance within two epochs, but not 100 %.
    Same arguments -> identical tensors.
    """
    num_classes = len(_SYNTH_TEXTURES)
    rng = np.random.default_rng(seed)
    colours = rng.uniform(0.3, 0.7, size=(num_classes, channels))

    n = n_train + n_test
    labels = np.concatenate([np.arange(n_train) % num_classes, np.arange(n_test) % num_classes])
    labels = np.concatenate([rng.permutation(labels[:n_train]), rng.permutation(labels[n_train:])])

    f32 = np.float32
    period = np.array([t[0] for t in _SYNTH_TEXTURES], dtype=f32)[labels]
    angle = np.deg2rad(np.array([t[1] for t in _SYNTH_TEXTURES], dtype=f32))[labels]
    k = f32(2 * np.pi) / period  # [n] angular frequency
    kx = (k * np.cos(angle))[:, None, None]
    ky = (k * np.sin(angle))[:, None, None]
    yy, xx = np.meshgrid(np.arange(size, dtype=f32), np.arange(size, dtype=f32), indexing="ij")
    phase = rng.uniform(0.0, 2 * np.pi, size=(n, 2, 1, 1)).astype(f32)
    # cos(kx x + ky y + p1) + cos(-kx x + ky y + p2): mirror image of one grating is the other.
    plaid = np.cos(kx * xx + ky * yy + phase[:, 0]) + np.cos(ky * yy - kx * xx + phase[:, 1])  # [n, H, W]
    amp = rng.uniform(0.0, 0.4, size=(n, 1, 1)).astype(f32) * f32(0.5)
    pattern = plaid * amp

    colour = (colours[labels] + rng.normal(0.0, 0.08, size=(n, channels))).astype(f32)
    img = colour[:, :, None, None] + pattern[:, None]
    img += rng.standard_normal(size=img.shape, dtype=f32) * f32(0.12)
    img = np.clip(np.rint(img * f32(255.0)), 0, 255).astype(np.uint8)

    class_names = [f"plaid_p{int(p)}_a{int(a)}" for p, a in _SYNTH_TEXTURES]
    return make_dataset(
        name, img[:n_train], labels[:n_train], img[n_train:], labels[n_train:], class_names, "generated"
    )


@register_dataset("synthetic")
def load_synthetic(
    root: str | None = None, download: bool = False, image_size: int | None = None
) -> ImageDataset:
    """Generated RGB 32x32, 10 classes, 2,000 train / 1,000 test (see :func:`make_synthetic`).

    With ``image_size`` the images are generated at that size (same periods in pixels).
    """
    return make_synthetic(channels=3, size=image_size or 32, name="synthetic")


@register_dataset("synthetic_gray")
def load_synthetic_gray(
    root: str | None = None, download: bool = False, image_size: int | None = None
) -> ImageDataset:
    """Generated grayscale 1x28x28, 10 classes, 2,000 train / 1,000 test; ``image_size`` as for ``synthetic``."""
    return make_synthetic(channels=1, size=image_size or 28, name="synthetic_gray")

"""A picture of what a recipe does to real samples: original, view 0, view 1 and, when it mixes, the mixed pair.

The two views are drawn independently, as the loader draws them for DLB.
The mixed pair is view 0 mixed as a current batch and view 1 mixed as DLB
mixes the replayed batch under the recipe's ``dlb_mix`` policy (``shared``:
same partners, lambda and box; ``independent``: a fresh draw; ``clean``:
unmixed).
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import numpy as np
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from augbench.augment.mixing import REPLAY_MIX_POLICIES, MixParams
from augbench.augment.recipe import Recipe


def _describe_mix(params: MixParams | None) -> str:
    if params is None:
        return "unmixed"
    if params.mode == "cutmix":
        top, bottom, left, right = params.box
        return f"cutmix lam={params.lam:.2f} box rows {top}-{bottom} cols {left}-{right}"
    return f"{params.mode} lam={params.lam:.2f}"


def _draw_mixing(recipe: Recipe, batch_size: int, image_size: tuple[int, int], attempts: int = 50) -> MixParams:
    """A mixing that mixes: a batch left unmixed (``prob`` < 1) or a CutMix box clipped away shows nothing."""
    params = recipe.mixer.sample(batch_size, image_size)
    for _ in range(attempts):
        if params.lam < 1:
            break
        params = recipe.mixer.sample(batch_size, image_size)
    return params


def pick_samples(labels: torch.Tensor, count: int, seed: int) -> torch.Tensor:
    """Indices of ``count`` samples, one per class in class order (cycling), drawn at random under ``seed``."""
    generator = torch.Generator().manual_seed(seed)
    classes = torch.unique(labels)
    chosen = []
    for i in range(count):
        members = torch.nonzero(labels == classes[i % len(classes)]).flatten()
        chosen.append(members[torch.randint(len(members), (1,), generator=generator)].item())
    return torch.tensor(chosen)


def recipe_grid(recipe: Recipe, images: torch.Tensor, labels: torch.Tensor, class_names: list[str],
                out_path: str | Path, seed: int = 0, title: str | None = None) -> Path:
    """Draws the grid for uint8 ``images`` ``[n, C, H, W]`` and writes it as a PNG, atomically.

    ``recipe`` must be :meth:`Recipe.prepared` for the data set (its mixer built).
    """
    n, channels, height, width = images.shape
    py_state, np_state = random.getstate(), np.random.get_state()
    random.seed(seed)
    np.random.seed(seed)
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            generator = torch.Generator().manual_seed(seed)
            view0, view1 = (recipe.pipeline(images, generator) for _ in range(2))
            columns = [("original", images.float() / 255), ("view 0", view0.float() / 255),
                       ("view 1", view1.float() / 255)]
            notes, mixing = "", {}  # column heading -> the mixing drawn in it
            if recipe.mixer is not None:
                current = _draw_mixing(recipe, n, (height, width))
                drawn = []  # the mixing the replay policy used, if any

                def mix(batch, batch_labels, params):
                    params = _draw_mixing(recipe, n, (height, width)) if params is None else params
                    drawn.append(params)
                    return (*recipe.mixer.apply(batch, batch_labels, params), params)

                mixed0 = recipe.mixer.apply(columns[1][1], labels, current)[0]
                mixed1 = REPLAY_MIX_POLICIES[recipe.mix_policy](mix, columns[2][1], labels, current)[0]
                replay = drawn[-1] if drawn else None
                replay_heading = f"view 1 mixed ({recipe.mix_policy})"
                columns += [("view 0 mixed", mixed0), (replay_heading, mixed1)]
                mixing = {"view 0 mixed": current, replay_heading: replay}
                notes = f"\nview 0: {_describe_mix(current)};  view 1: {_describe_mix(replay)}"
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)

    fig = Figure(figsize=(1.45 * len(columns) + 0.6, 1.45 * n + 0.9))
    FigureCanvasAgg(fig)
    axes = fig.subplots(n, len(columns), squeeze=False)
    for col, (heading, stack) in enumerate(columns):
        for row in range(n):
            ax = axes[row][col]
            pixels = stack[row].clamp(0, 1).permute(1, 2, 0).numpy()
            if channels == 1:
                ax.imshow(pixels[:, :, 0], cmap="gray", vmin=0, vmax=1, interpolation="nearest")
            else:
                ax.imshow(pixels, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if row == 0:
                ax.set_title(heading, fontsize=8)
            if col == 0:
                ax.set_ylabel(class_names[int(labels[row])][:14], fontsize=7)
            params = mixing.get(heading)
            if params is not None and params.mode != "none":
                ax.set_xlabel(f"with row {int(params.partner[row])}", fontsize=6)
    fig.suptitle(title or f"recipe {recipe.name}{notes}", fontsize=8)
    fig.tight_layout()

    out = Path(out_path)
    tmp = out.with_name(f".{out.name}.tmp")
    try:
        fig.savefig(tmp, format="png", dpi=110)
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return out

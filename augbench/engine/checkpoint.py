"""A run's checkpoint: written atomically after every epoch, read back to resume.

Besides the weights, the optimiser and the schedule it holds every random
generator's state (torch, CUDA, numpy, Python), so a resumed run draws what
the uninterrupted run would have drawn.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import torch


def rng_state() -> dict[str, Any]:
    state = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save(path: Path, state: dict[str, Any]) -> None:
    """Writes ``state`` to ``path`` via a temporary file and rename, so a crash never leaves half a checkpoint."""
    tmp = Path(path).with_name(Path(path).name + ".tmp")
    torch.save(state, tmp)
    tmp.replace(path)


def load(path: Path) -> dict[str, Any]:
    return torch.load(path, map_location="cpu", weights_only=False)

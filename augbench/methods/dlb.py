"""DLB: Self-Distillation from the Last Mini-Batch.

Shen, Xu, Yang, Li, Guo. "Self-Distillation from the Last Mini-Batch for
Consistency Regularization", CVPR 2022, arXiv:2203.16172. Follows the official
code (``dlb.py`` in Meta-knowledge-Lab/DLB) step by step.

Every sample arrives with two independently augmented views. At step t, with
current batch B_t and previous batch B_{t-1}:

    z_t     = f_t(view0(B_t))                 current batch, forwarded now
    r_t     = f_t(view1(B_{t-1}))             previous batch replayed (other view)
    teacher = z_{t-1} = f_{t-1}(view0(B_{t-1}))   logits step t-1 produced, detached

    L = CE([r_t; z_t], [y_{t-1}; y_t])                    mean over the 2n samples
        + alpha * T^2 * KL( softmax(teacher / T) || softmax(r_t / T) )   (batchmean)

The first step has no teacher and uses CE on B_t alone. The cache (view 1 of
B_t, its labels and z_t) carries across epoch boundaries, and through a
checkpoint. Defaults T = 3, alpha = 1 as in the paper.

Forward modes: ``separate`` runs the two batches as two forward calls (the
official code: BatchNorm statistics per half, the default); ``joint`` forwards
the concatenated 2n batch once (the paper's "one mini-batch, half of it
shared" reading, faster).

With batch mixing the current batch is mixed afresh and the teacher logits are
those of the mixed images. The replayed half follows ``Batch.mix_policy``:

- ``shared``: mixed with the same partners, lambda (and CutMix box) as when it
  was the current batch, so teacher and student see the same mixture of
  different views;
- ``independent``: mixed with a newly drawn mixing;
- ``clean``: not mixed (hard labels).

CE targets follow the mixing actually applied to each half.

Under DistributedDataParallel each rank keeps its own cache and replays its
own previous shard: rank r's B_{t-1} is its shard of the previous global
batch, and its teacher is z_{t-1} on that shard, the logits that the
replicated model of step t-1 (the same weights on every rank) gave it; with
per-rank BatchNorm those logits used the shard's batch statistics (the
global batch's under ``--sync-bn``). Nothing of the cache crosses ranks: the
only exchange is DDP's gradient average, so the KL term over the global batch
is the ranks' batchmean KLs averaged, as in one process at the same global
batch. The checkpoint keeps every rank's cache.
"""

from __future__ import annotations

from typing import Any

import torch

from augbench.augment.mixing import REPLAY_MIX_POLICIES
from augbench.losses import kd_kl, soft_cross_entropy
from augbench.methods.base import Batch, Method, StepOutput
from augbench.methods.registry import register_method


@register_method
class DLB(Method):
    name = "dlb"
    num_views = 2
    forward_passes_per_sample = 2
    defaults = {"temperature": 3.0, "alpha": 1.0, "forward": "separate"}
    choices = {"forward": ("separate", "joint")}

    def __init__(self, num_classes: int, **args: Any):
        super().__init__(num_classes, **args)
        self.check_arg("temperature", self.temperature > 0, "> 0")
        self.replay_images: torch.Tensor | None = None
        self.replay_labels: torch.Tensor | None = None
        self.replay_mix: Any = None
        self.teacher_logits: torch.Tensor | None = None

    def _replay_inputs(self, batch: Batch):
        """The previous batch's second view, mixed according to the batch's mix policy."""
        if batch.mixer is None:
            return self.replay_images, self.replay_labels
        if batch.mix_policy not in REPLAY_MIX_POLICIES:
            raise ValueError(f"dlb: unknown mix policy {batch.mix_policy!r} "
                             f"(accepted: {', '.join(REPLAY_MIX_POLICIES)})")
        return REPLAY_MIX_POLICIES[batch.mix_policy](batch.mix, self.replay_images, self.replay_labels,
                                                     self.replay_mix)

    def step(self, model, batch: Batch) -> StepOutput:
        current, current_targets, current_mix = batch.mix(batch.views[0], batch.labels)
        parts: dict[str, torch.Tensor] = {}

        if self.teacher_logits is None:
            logits = model(current)
            loss = soft_cross_entropy(logits, current_targets)
            forwarded = current.shape[0]
            parts["ce"] = loss.detach()
        else:
            replay, replay_targets = self._replay_inputs(batch)
            n_replay, n_current = replay.shape[0], current.shape[0]
            if self.forward == "joint":
                both = model(torch.cat([replay, current], dim=0))
                replay_logits, logits = both[:n_replay], both[n_replay:]
            else:
                logits = model(current)
                replay_logits = model(replay)
            # CE over all 2n samples = size-weighted mean of the two halves' means.
            ce = (n_replay * soft_cross_entropy(replay_logits, replay_targets)
                  + n_current * soft_cross_entropy(logits, current_targets)) / (n_replay + n_current)
            kd = kd_kl(replay_logits, self.teacher_logits, self.temperature)
            loss = ce + self.alpha * kd
            forwarded = n_replay + n_current
            parts.update(ce=ce.detach(), kd=kd.detach())

        # This step's batch becomes the next step's replay; its logits the next teacher.
        self.replay_images = batch.views[1].detach()
        self.replay_labels = batch.labels.detach()
        self.replay_mix = current_mix
        self.teacher_logits = logits.detach().float()
        return StepOutput(loss=loss, logits=logits, labels=batch.labels, forward_samples=forwarded, parts=parts)

    def state_dict(self) -> dict[str, Any]:
        return {
            "replay_images": self.replay_images,
            "replay_labels": self.replay_labels,
            "replay_mix": self.replay_mix,
            "teacher_logits": self.teacher_logits,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.replay_images = state.get("replay_images")
        self.replay_labels = state.get("replay_labels")
        self.replay_mix = state.get("replay_mix")
        self.teacher_logits = state.get("teacher_logits")

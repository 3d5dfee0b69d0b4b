"""PS-KD: progressive self-knowledge distillation.

Kim, Ji, Yoon, Hwang. "Self-Knowledge Distillation with Progressive
Refinement of Targets", ICCV 2021. Follows the official code
(lgcnsai/PS-KD-Pytorch, ``main.py``).

The teacher is the model itself one epoch ago: for every training sample the
softmax prediction it received in the previous epoch, ``p_{t-1}(x)``, is kept,
and the target mixes it with the label with a weight that grows linearly over
training:

    alpha_t = alpha_T * (t + 1) / T_epochs          t = 0, 1, ... (0-based epoch)
    q_t(x)  = (1 - alpha_t) * onehot(y) + alpha_t * p_{t-1}(x)
    L       = CE(f(x), q_t(x)) = - sum_k q_t(x)_k log softmax(f(x))_k          mean over the batch

In the first epoch there is no previous prediction and the target is the
label. Default ``alpha_T = 0.8``, the paper's and official code's value for
CIFAR-100. ``T_epochs`` is the number of epochs the run trains (under
``--budget samples`` the same as ``--epochs``: PS-KD forwards every sample
once).

The per-sample memory ``[num_train, K]`` lives on the training device. This
epoch's predictions are written into a second buffer, and the buffers are
swapped when the epoch ends, so the memory changes exactly once per epoch and
every target of epoch t uses epoch t-1's predictions. (The official code
writes in place, which is the same when each sample is seen once per epoch.)
A sample not forwarded in an epoch (the dropped remainder of the shuffled
batches) keeps its latest prediction; one never forwarded uses its label.

With batch mixing (Mixup/CutMix) the soft targets ``q_t`` of the batch are
mixed with the batch's mixing, i.e. ``(1 - alpha_t) * mix(y) + alpha_t *
mix(p_{t-1})`` with the same partners and lambda (target mixing is linear).
The prediction stored for sample i is the one for the image at its position,
the mixed image whose anchor is i; recording clean predictions instead would
need one more forward per sample. The official code trains without batch
mixing (``main.py`` has no Mixup or CutMix), so this combination is augbench's
design, not a reproduction.

Under DistributedDataParallel the memory is *gathered*: every rank holds the
whole ``[num_train, K]`` memory. A rank writes the predictions of its own
shard's samples during the epoch; when the epoch ends the ranks sum what each
wrote (one all-reduce; within an epoch a sample lands on exactly one rank, so
the sum adds zeros to the one prediction and is exact), and every rank
starts the next epoch with the same memory. Gathering is needed because the
shards are cut from a new permutation every epoch: a sample's next target is
read by whichever rank draws it next.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.distributed as dist

from augbench.losses import soft_cross_entropy
from augbench.methods.base import Batch, Method, StepOutput
from augbench.methods.registry import register_method


@register_method
class ProgressiveSelfKD(Method):
    name = "pskd"
    needs_index = True
    defaults = {"alpha_T": 0.8}

    def __init__(self, num_classes: int, **args: Any):
        super().__init__(num_classes, **args)
        self.check_arg("alpha_T", 0.0 <= self.alpha_T <= 1.0, "in [0, 1]")
        self.alpha_t = 0.0
        # memory: predictions of the last epoch each sample was seen in; next_*: this epoch's, swapped in at its end.
        self.memory: torch.Tensor | None = None
        self.remembered: torch.Tensor | None = None
        self.next_memory: torch.Tensor | None = None
        self.next_remembered: torch.Tensor | None = None
        # Samples this process forwarded in the current epoch (what it contributes to the gathered memory).
        self.written: torch.Tensor | None = None

    def setup(self, num_train: int, device: torch.device) -> None:
        self.memory = torch.zeros(num_train, self.num_classes, device=device)
        self.remembered = torch.zeros(num_train, dtype=torch.bool, device=device)

    def on_epoch_start(self, epoch: int, num_epochs: int) -> None:
        self.alpha_t = self.alpha_T * (epoch + 1) / num_epochs
        self.next_memory = self.memory.clone()
        self.next_remembered = self.remembered.clone()
        self.written = torch.zeros_like(self.remembered)

    def on_epoch_end(self, epoch: int, num_epochs: int) -> None:
        if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            self._gather_epoch()
        self.memory, self.next_memory = self.next_memory, None
        self.remembered, self.next_remembered = self.next_remembered, None

    def _gather_epoch(self) -> None:
        """Every rank's predictions of this epoch into every rank's ``next_memory`` (exact: disjoint writers)."""
        written = self.written.unsqueeze(1)
        predictions = torch.where(written, self.next_memory, torch.zeros_like(self.next_memory))
        count = self.written.to(torch.int32)
        dist.all_reduce(predictions)
        dist.all_reduce(count)
        seen = count.bool()
        self.next_memory = torch.where(seen.unsqueeze(1), predictions, self.next_memory)
        self.next_remembered |= seen

    def soft_targets(self, labels: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        """``q_t = (1 - alpha_t) * onehot(y) + alpha_t * p_{t-1}``; the label alone where nothing is remembered."""
        onehot = torch.nn.functional.one_hot(labels, self.num_classes).float()
        weight = self.alpha_t * self.remembered[index].float().unsqueeze(1)
        return (1.0 - weight) * onehot + weight * self.memory[index]

    def step(self, model, batch: Batch) -> StepOutput:
        targets = self.soft_targets(batch.labels, batch.index)
        images, mixed_targets, _ = batch.mix(batch.views[0], targets)
        logits = model(images)
        loss = soft_cross_entropy(logits, mixed_targets)
        self.next_memory[batch.index] = torch.softmax(logits.detach().float(), dim=1)
        self.next_remembered[batch.index] = True
        self.written[batch.index] = True
        return StepOutput(loss=loss, logits=logits, labels=batch.labels, forward_samples=images.shape[0],
                          parts={"ce_soft": loss.detach()})

    def state_dict(self) -> dict[str, Any]:
        return {"alpha_t": self.alpha_t, "memory": self.memory, "remembered": self.remembered,
                "next_memory": self.next_memory, "next_remembered": self.next_remembered, "written": self.written}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.alpha_t = state["alpha_t"]
        self.memory, self.remembered = state["memory"], state["remembered"]
        self.next_memory, self.next_remembered = state["next_memory"], state["next_remembered"]
        self.written = state.get("written")

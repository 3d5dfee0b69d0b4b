"""LSR: label smoothing regularization.

Szegedy, Vanhoucke, Ioffe, Shlens, Wojna. "Rethinking the Inception
Architecture for Computer Vision", CVPR 2016, Section 7. The target puts
``1 - epsilon`` on the label and spreads ``epsilon`` uniformly over all K
classes (the label included):

    q'(k) = (1 - epsilon) * onehot(y)(k) + epsilon / K
    L     = CE(f(x), q') = - sum_k q'(k) log softmax(f(x))_k        mean over the batch

Default ``epsilon = 0.1``, the paper's value (also what the DLB paper's LSR
baseline uses).

With batch mixing (Mixup/CutMix) the mixed probability target is smoothed:
``q' = (1 - epsilon) * mix(y) + epsilon / K``. Smoothing is linear in the
target and the uniform part sums to one, so this equals mixing the two
smoothed labels with the same lambda: the order of mixing and smoothing does
not matter.
"""

from __future__ import annotations

from typing import Any

from augbench.losses import as_probabilities, soft_cross_entropy
from augbench.methods.base import Batch, Method, StepOutput
from augbench.methods.registry import register_method


@register_method
class LabelSmoothing(Method):
    name = "lsr"
    defaults = {"epsilon": 0.1}

    def __init__(self, num_classes: int, **args: Any):
        super().__init__(num_classes, **args)
        self.check_arg("epsilon", 0.0 <= self.epsilon <= 1.0, "in [0, 1]")

    def step(self, model, batch: Batch) -> StepOutput:
        images, targets, _ = batch.mix(batch.views[0], batch.labels)
        logits = model(images)
        smoothed = (1.0 - self.epsilon) * as_probabilities(targets, self.num_classes) + self.epsilon / self.num_classes
        loss = soft_cross_entropy(logits, smoothed)
        return StepOutput(loss=loss, logits=logits, labels=batch.labels, forward_samples=images.shape[0],
                          parts={"ce_smoothed": loss.detach()})

"""Plain cross-entropy training, the baseline every gain is measured against.

Loss: ``L = CE(f(x), y)``, averaged over the batch. With batch mixing
(Mixup/CutMix) ``x`` is the mixed image and ``y`` the mixed probability
target, as in Zhang et al. (2018) and Yun et al. (2019).
"""

from __future__ import annotations

from augbench.losses import soft_cross_entropy
from augbench.methods.base import Batch, Method, StepOutput
from augbench.methods.registry import register_method


@register_method
class CrossEntropy(Method):
    name = "ce"

    def step(self, model, batch: Batch) -> StepOutput:
        images, targets, _ = batch.mix(batch.views[0], batch.labels)
        logits = model(images)
        loss = soft_cross_entropy(logits, targets)
        return StepOutput(loss=loss, logits=logits, labels=batch.labels, forward_samples=images.shape[0],
                          parts={"ce": loss.detach()})

"""CS-KD: class-wise self-knowledge distillation.

Yun, Park, Lee, Shin. "Regularizing Class-wise Predictions via
Self-knowledge Distillation", CVPR 2020. Follows the official code
(alinlab/cs-kd, ``train.py`` and ``PairBatchSampler``).

Each batch holds n anchors x and, for each anchor, another random sample x'
of the same class (the ``class_pairs`` sampler: anchors first, then their
partners in the same order). The prediction on x' teaches the prediction on x:

    L = CE(f(x), y) + lambda_cls * T^2 * KL( softmax(f(x') / T) || softmax(f(x) / T) )   (batchmean)

The partners are forwarded in a second call, in training mode and without a
gradient (``f(x')`` is detached), as in the official code. Defaults
``temperature = 4``, ``lambda_cls = 1``: the official defaults (``--temp 4``,
``--lamda 1``).

Epoch and forward count: every training sample is an anchor once per epoch
(a shuffled permutation cut into batches of ``--batch-size`` anchors, the
remainder dropped, as for every other method); partners are drawn on top, so
a step forwards ``2 * batch_size`` samples and ``forward_passes_per_sample``
is 2. Under ``--budget samples`` CS-KD therefore trains half the epochs.
Partners are drawn from the training labels as given, so with label noise a
pair shares its (possibly wrong) label.

With batch mixing (Mixup/CutMix) anchors and partners are mixed
*consistently*: the anchors get a fresh mixing and the partners the very same
one (same partner permutation, lambda and CutMix box). Since anchor i and
partner i share a class, anchor i mixed with anchor j and partner i mixed
with partner j are two images of the same class mixture in the same
proportions, so the KL still compares predictions that should agree; the CE
term uses the mixed target. Leaving the pair unmixed would need one more
forward of the anchors. The official code trains without batch mixing
(``train.py`` has no Mixup or CutMix), so this combination is augbench's
design, not a reproduction.

Under DistributedDataParallel the ``class_pairs`` sampler's batch is sharded
per block: rank r takes the same contiguous slice of the anchors and of the
partners (``augbench.data.samplers.shard``), so anchor i and its partner
always land on the same rank and the step above runs unchanged on each
rank's pairs. ``--batch-size`` (the anchors) must divide by the world size.
"""

from __future__ import annotations

from typing import Any

import torch

from augbench.losses import kd_kl, soft_cross_entropy
from augbench.methods.base import Batch, Method, StepOutput
from augbench.methods.registry import register_method


@register_method
class ClassWiseSelfKD(Method):
    name = "cskd"
    sampler = "class_pairs"
    forward_passes_per_sample = 2
    defaults = {"temperature": 4.0, "lambda_cls": 1.0}

    def __init__(self, num_classes: int, **args: Any):
        super().__init__(num_classes, **args)
        self.check_arg("temperature", self.temperature > 0, "> 0")
        self.check_arg("lambda_cls", self.lambda_cls >= 0, ">= 0")

    def step(self, model, batch: Batch) -> StepOutput:
        n = batch.labels.shape[0] // 2
        images = batch.views[0]
        labels = batch.labels[:n]
        anchors, targets, mixing = batch.mix(images[:n], labels)
        partners, _, _ = batch.mix(images[n:], batch.labels[n:], mixing)
        logits = model(anchors)
        with torch.no_grad():
            partner_logits = model(partners)
        ce = soft_cross_entropy(logits, targets)
        kd = kd_kl(logits, partner_logits.float(), self.temperature)
        loss = ce + self.lambda_cls * kd
        return StepOutput(loss=loss, logits=logits, labels=labels, forward_samples=2 * n,
                          parts={"ce": ce.detach(), "kd": kd.detach()})

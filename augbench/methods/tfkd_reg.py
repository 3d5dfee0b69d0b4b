"""Tf-KD_reg: teacher-free knowledge distillation with a manually designed teacher.

Yuan, Tay, Li, Wang, Feng. "Revisiting Knowledge Distillation via Label
Smoothing Regularization", CVPR 2020 (Section 5, "Tf-KD_reg"). The teacher is
not a network but a fixed distribution that puts probability ``a`` on the
label and spreads the rest evenly:

    p_d(k)   = a                  if k = y
             = (1 - a) / (K - 1)  otherwise
    p_d^T    = softmax(p_d / T)
    L        = (1 - alpha) * CE(f(x), y) + alpha * m / K * KL( p_d^T || softmax(f(x)) )      (batchmean)

This is the form of the official code (``loss_kd_regularization`` in
``my_loss_function.py`` of yuanli2333/Teacher-free-Knowledge-Distillation), from
which the paper's numbers come. Two details differ from the paper's written
formula, and the code is followed: the temperature is applied to the designed
*probabilities* (``softmax(p_d / T)``, which flattens ``p_d`` towards uniform),
and the student's softmax is not tempered (no ``T^2`` factor). The official
code reduces the KL with ``nn.KLDivLoss()``'s default element mean (the sum
over the batch and the K classes divided by ``n * K``) and multiplies it by
``params.multiplier`` (m); per sample that is the KL times ``m / K``, which is
what is computed here for any class count. With m = K (the ResNet18 /
CIFAR-100 configuration, m = 100) it is the plain per-sample KL.

Defaults: ``correct_prob = 0.99`` (hard-coded in ``loss_kd_regularization``),
``temperature = 20``, ``alpha = 0.1`` and ``multiplier = 100`` (the official
ResNet18 / CIFAR-100 configuration,
``experiments/base_experiments/base_resnet18/params.json``: ``reg_temperature``
20, ``reg_alpha`` 0.1, ``multiplier`` 100; other configurations of that
repository use multipliers 1 and 50).

With batch mixing (Mixup/CutMix) the designed teacher is built from the mixed
probability target ``q = mix(y)``: ``p_d = a * q + (1 - a) / (K - 1) * (1 - q)``.
``p_d`` is affine in the label, so this equals mixing the two samples'
designed teachers with the same lambda; the temperature softmax is then
applied to that mixture, and the CE term uses ``q``. (The official code has no
batch mixing; this extension is augbench's.)
"""

from __future__ import annotations

from typing import Any

import torch

from augbench.losses import as_probabilities, kl_to_distribution, soft_cross_entropy
from augbench.methods.base import Batch, Method, StepOutput
from augbench.methods.registry import register_method


def designed_teacher(target_probs: torch.Tensor, correct_prob: float) -> torch.Tensor:
    """``p_d``: ``correct_prob`` on the target class(es), ``(1 - correct_prob) / (K - 1)`` elsewhere."""
    num_classes = target_probs.shape[1]
    rest = (1.0 - correct_prob) / (num_classes - 1)
    return correct_prob * target_probs + rest * (1.0 - target_probs)


@register_method
class TeacherFreeRegularization(Method):
    name = "tfkd_reg"
    defaults = {"correct_prob": 0.99, "temperature": 20.0, "alpha": 0.1, "multiplier": 100.0}

    def __init__(self, num_classes: int, **args: Any):
        super().__init__(num_classes, **args)
        self.check_arg("correct_prob", 0.0 < self.correct_prob <= 1.0, "in (0, 1]")
        self.check_arg("temperature", self.temperature > 0, "> 0")
        self.check_arg("alpha", 0.0 <= self.alpha <= 1.0, "in [0, 1]")
        self.check_arg("multiplier", self.multiplier > 0, "> 0")

    def step(self, model, batch: Batch) -> StepOutput:
        images, targets, _ = batch.mix(batch.views[0], batch.labels)
        logits = model(images)
        teacher = designed_teacher(as_probabilities(targets, self.num_classes), self.correct_prob)
        teacher_probs = torch.softmax(teacher / self.temperature, dim=1)
        ce = soft_cross_entropy(logits, targets)
        # The official KLDivLoss() element mean times multiplier, i.e. the per-sample KL times multiplier / K.
        reg = kl_to_distribution(logits, teacher_probs) * (self.multiplier / self.num_classes)
        loss = (1.0 - self.alpha) * ce + self.alpha * reg
        return StepOutput(loss=loss, logits=logits, labels=batch.labels, forward_samples=images.shape[0],
                          parts={"ce": ce.detach(), "reg": reg.detach()})

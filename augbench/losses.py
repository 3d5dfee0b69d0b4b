"""Loss functions shared by the training methods.

Each method file writes its own objective in its docstring; the pieces it is
made of live here so that every method computes, say, a distillation KL the
same way.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def kd_kl(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """Temperature-scaled distillation loss of Hinton et al. (2015).

    ``T^2 * KL(softmax(teacher / T) || softmax(student / T))``, averaged over
    the batch (PyTorch's ``batchmean``). The ``T^2`` factor keeps gradient
    magnitudes comparable across temperatures. The teacher is used as given:
    callers detach it when it must not receive gradients.

    Args:
        student_logits: ``[n, classes]`` logits that receive the gradient.
        teacher_logits: ``[n, classes]`` logits of the teacher.
        temperature: softmax temperature ``T > 0``.
    """
    t = float(temperature)
    log_student = F.log_softmax(student_logits / t, dim=1)
    teacher_probs = F.softmax(teacher_logits / t, dim=1)
    return F.kl_div(log_student, teacher_probs, reduction="batchmean") * (t * t)


def soft_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Cross-entropy for hard labels ``[n]`` or probability targets ``[n, classes]``, mean over n."""
    if targets.dim() == 1:
        return F.cross_entropy(logits, targets)
    return torch.sum(-targets * F.log_softmax(logits, dim=1), dim=1).mean()


def as_probabilities(targets: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Hard labels ``[n]`` as one-hot float ``[n, classes]``; probability targets come back as they are."""
    if targets.dim() == 1:
        return F.one_hot(targets, num_classes).float()
    return targets.float()


def kl_to_distribution(student_logits: torch.Tensor, target_probs: torch.Tensor) -> torch.Tensor:
    """``KL(target || softmax(student))`` averaged over the batch (``batchmean``).

    The target is a fixed distribution (a designed teacher, a smoothed label),
    so only the student receives a gradient.
    """
    return F.kl_div(F.log_softmax(student_logits, dim=1), target_probs, reduction="batchmean")

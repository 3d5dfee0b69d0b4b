"""Evaluation metrics: accuracy, negative log-likelihood and expected calibration error."""

from __future__ import annotations

import torch
import torch.nn.functional as F


@torch.no_grad()
def evaluate(model, images: torch.Tensor, labels: torch.Tensor, batch_size: int = 1000,
             channels_last: bool = False, autocast_dtype=None) -> dict[str, float]:
    """Accuracy (%), NLL and 15-bin ECE (%) (Guo et al. 2017) of ``model`` on normalized ``images``."""
    if len(labels) == 0:
        return {"acc": float("nan"), "nll": float("nan"), "ece": float("nan")}
    was_training = model.training
    model.eval()
    logits = []
    for start in range(0, len(labels), batch_size):
        x = images[start:start + batch_size]
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast(x.device.type, dtype=autocast_dtype, enabled=autocast_dtype is not None):
            logits.append(model(x).float())
    model.train(was_training)
    logits = torch.cat(logits)
    labels = labels.to(logits.device)
    probs = logits.softmax(dim=1)
    confidence, predicted = probs.max(dim=1)
    correct = (predicted == labels).float()
    return {
        "acc": 100.0 * correct.mean().item(),
        "nll": F.cross_entropy(logits, labels).item(),
        "ece": 100.0 * expected_calibration_error(confidence, correct),
    }


def expected_calibration_error(confidence: torch.Tensor, correct: torch.Tensor, bins: int = 15) -> float:
    """ECE = sum over equal-width confidence bins of |bin| / n * |acc(bin) - conf(bin)| (a fraction)."""
    edges = torch.linspace(0, 1, bins + 1, device=confidence.device)
    ece = torch.zeros((), device=confidence.device)
    for lo, hi in zip(edges[:-1], edges[1:]):
        in_bin = (confidence > lo) & (confidence <= hi)
        if in_bin.any():
            ece += in_bin.float().mean() * (correct[in_bin].mean() - confidence[in_bin].mean()).abs()
    return ece.item()

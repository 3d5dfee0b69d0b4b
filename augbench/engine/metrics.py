"""Evaluation metrics: accuracy, negative log-likelihood and expected calibration error."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from augbench.augment.pipeline import normalize


@torch.inference_mode()
def evaluate(model, images: torch.Tensor, labels: torch.Tensor, mean: torch.Tensor, std: torch.Tensor,
             batch_size: int = 1000, channels_last: bool = False, autocast_dtype=None) -> dict[str, float]:
    """Accuracy (%), NLL and 15-bin ECE (%) (Guo et al. 2017) of ``model`` on uint8 ``images``.

    Images are normalised per batch on their device (``mean``/``std`` per
    channel in [0, 1] units); the three numbers are read back once.
    """
    if len(labels) == 0:
        return {"acc": float("nan"), "nll": float("nan"), "ece": float("nan")}
    was_training = model.training
    model.eval()
    dtype = autocast_dtype or torch.float32
    logits = []
    for start in range(0, len(labels), batch_size):
        x = images[start:start + batch_size]
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        x = normalize(x, mean, std, dtype)
        with torch.autocast(x.device.type, dtype=autocast_dtype, enabled=autocast_dtype is not None):
            logits.append(model(x).float())
    model.train(was_training)
    logits = torch.cat(logits)
    labels = labels.to(logits.device)
    probs = logits.softmax(dim=1)
    confidence, predicted = probs.max(dim=1)
    correct = (predicted == labels).float()
    acc, nll, ece = torch.stack([100.0 * correct.mean(), F.cross_entropy(logits, labels),
                                 100.0 * expected_calibration_error(confidence, correct)]).tolist()
    return {"acc": acc, "nll": nll, "ece": ece}


def expected_calibration_error(confidence: torch.Tensor, correct: torch.Tensor, bins: int = 15) -> torch.Tensor:
    """ECE = sum over equal-width confidence bins of |bin| / n * |acc(bin) - conf(bin)| (a fraction, a tensor).

    Bins are ``(k/bins, (k+1)/bins]``; all bins are summed at once.
    """
    bin_of = (torch.ceil(confidence * bins).long() - 1).clamp(0, bins - 1)
    gap = torch.zeros(bins, device=confidence.device).index_add_(0, bin_of, correct - confidence)
    return gap.abs().sum() / confidence.numel()

"""Evaluation metrics: accuracy, negative log-likelihood and expected calibration error."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from augbench.data.loader import normalize

#: Equal-width confidence bins of the expected calibration error.
ECE_BINS = 15


@torch.inference_mode()
def evaluate(model, images: torch.Tensor, labels: torch.Tensor, mean: torch.Tensor, std: torch.Tensor,
             batch_size: int = 1000, channels_last: bool = False, autocast_dtype=None,
             reduce: Callable[[torch.Tensor], torch.Tensor] | None = None) -> dict[str, float]:
    """Accuracy (%), NLL and 15-bin ECE (%) (Guo et al. 2017) of ``model`` on uint8 ``images``.

    Images are normalised per batch on their device (``mean``/``std`` per
    channel in [0, 1] units); the three numbers are read back once.

    Under DistributedDataParallel each rank passes its shard of the split and
    ``reduce`` (a sum over the ranks, in place): the ranks' counts are summed
    (samples, correct predictions, NLL sum and per-bin sums of correct minus
    confidence), never their means, so the result is that of the whole split.
    """
    sums = evaluation_sums(model, images, labels, mean, std, batch_size, channels_last, autocast_dtype)
    if reduce is not None:
        sums = reduce(sums)
    n = sums[0]
    if n.item() == 0:
        return {"acc": float("nan"), "nll": float("nan"), "ece": float("nan")}
    acc, nll, ece = torch.stack([100.0 * (sums[1] / n), sums[2] / n, 100.0 * (sums[3:].abs().sum() / n)]).tolist()
    return {"acc": acc, "nll": nll, "ece": ece}


def evaluation_sums(model, images: torch.Tensor, labels: torch.Tensor, mean: torch.Tensor, std: torch.Tensor,
                    batch_size: int = 1000, channels_last: bool = False, autocast_dtype=None) -> torch.Tensor:
    """``[n, correct, NLL sum, ECE bin sums...]`` (float32, on the images' device): what adds across shards."""
    device = images.device
    if len(labels) == 0:
        return torch.zeros(3 + ECE_BINS, device=device)
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
    confidence, predicted = logits.softmax(dim=1).max(dim=1)
    correct = (predicted == labels).float()
    count = torch.tensor([float(len(labels))], device=logits.device)
    return torch.cat([count, correct.sum().unsqueeze(0),
                      F.cross_entropy(logits, labels, reduction="sum").unsqueeze(0),
                      calibration_gaps(confidence, correct)])


def calibration_gaps(confidence: torch.Tensor, correct: torch.Tensor, bins: int = ECE_BINS) -> torch.Tensor:
    """Per equal-width confidence bin ``(k/bins, (k+1)/bins]``: the sum of (correct - confidence)."""
    bin_of = (torch.ceil(confidence * bins).long() - 1).clamp(0, bins - 1)
    return torch.zeros(bins, device=confidence.device).index_add_(0, bin_of, correct - confidence)


def expected_calibration_error(confidence: torch.Tensor, correct: torch.Tensor, bins: int = ECE_BINS) -> torch.Tensor:
    """ECE = sum over equal-width confidence bins of |bin| / n * |acc(bin) - conf(bin)| (a fraction, a tensor).

    |bin| * (acc(bin) - conf(bin)) is the bin's sum of (correct - confidence), so all bins are summed at once.
    """
    return calibration_gaps(confidence, correct, bins).abs().sum() / confidence.numel()

"""DLB against an independent reference loop written after the official code (Meta-knowledge-Lab/DLB)."""

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from augbench.methods import Batch, create_method

T, ALPHA, CLASSES = 3.0, 1.0, 4


def tiny_model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.AdaptiveAvgPool2d(2),
                         nn.Flatten(), nn.Linear(16, CLASSES))


def batches(steps=3, n=8):
    g = torch.Generator().manual_seed(1)
    return [(torch.randn(n, 2, 1, 8, 8, generator=g), torch.randint(0, CLASSES, (n,), generator=g))
            for _ in range(steps)]


def reference_losses(model, data, joint=False):
    """The official train_one_epoch, transcribed: returns the loss of every step."""
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True, weight_decay=5e-4)
    pre_data, pre_out, losses = None, None, []
    for imgs, label in data:
        if pre_data is not None and joint:
            pre_images, pre_label = pre_data
            both = model(torch.cat([pre_images[:, 1], imgs[:, 0]]))
            out_pre, out = both[: len(pre_label)], both[len(pre_label):]
        else:
            out = model(imgs[:, 0])
        if pre_data is not None:
            pre_images, pre_label = pre_data
            if not joint:
                out_pre = model(pre_images[:, 1])
            ce_loss = F.cross_entropy(torch.cat((out_pre, out)), torch.cat((pre_label, label)))
            dml_loss = F.kl_div(F.log_softmax(out_pre / T, dim=1), F.softmax(pre_out.detach() / T, dim=1),
                                reduction="batchmean") * T * T
            loss = ce_loss + ALPHA * dml_loss
        else:
            loss = F.cross_entropy(out, label)
        losses.append(loss.item())
        pre_data, pre_out = (imgs, label), out
        opt.zero_grad()
        loss.backward()
        opt.step()
    return losses


def method_losses(model, data, forward="separate", interrupt=None):
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True, weight_decay=5e-4)
    method = create_method("dlb", CLASSES, {"temperature": T, "alpha": ALPHA, "forward": forward})
    losses, parts = [], []
    for step, (imgs, label) in enumerate(data):
        if interrupt is not None:
            method = interrupt(step, method)
        out = method.step(model, Batch([imgs[:, 0], imgs[:, 1]], label, torch.arange(len(label))))
        losses.append(out.loss.item())
        parts.append(out.parts)
        opt.zero_grad()
        out.loss.backward()
        opt.step()
    return losses, parts


@pytest.mark.parametrize("forward", ["separate", "joint"])
def test_dlb_matches_reference_step_by_step(forward):
    data = batches()
    model = tiny_model()
    expected = reference_losses(copy.deepcopy(model), data, joint=forward == "joint")
    got, parts = method_losses(copy.deepcopy(model), data, forward)
    assert got == pytest.approx(expected, abs=1e-6)
    assert "kd" not in parts[0] and "kd" in parts[1] and parts[1]["kd"] > 0


def test_first_step_is_plain_cross_entropy():
    imgs, label = batches(1)[0]
    model = tiny_model()
    method = create_method("dlb", CLASSES)
    out = method.step(model, Batch([imgs[:, 0], imgs[:, 1]], label, torch.arange(len(label))))
    assert out.loss.item() == pytest.approx(F.cross_entropy(model(imgs[:, 0]), label).item(), abs=1e-6)
    assert out.forward_samples == len(label)


def test_cache_survives_epoch_boundary_and_checkpoint():
    data = batches(4)
    expected, _ = method_losses(tiny_model(), data)

    def epoch_boundary_then_reload(step, method):
        if step == 2:  # an epoch ends, the run is checkpointed and resumed in a fresh method object
            method.on_epoch_end(0, 2)
            restored = create_method("dlb", CLASSES, method.args)
            state = copy.deepcopy(method.state_dict())
            restored.load_state_dict(state)
            restored.on_epoch_start(1, 2)
            return restored
        return method

    got, parts = method_losses(tiny_model(), data, interrupt=epoch_boundary_then_reload)
    assert got == pytest.approx(expected, abs=1e-7)
    assert "kd" in parts[2]  # the replayed batch from before the boundary is distilled


def test_bad_dlb_arguments_are_usage_errors():
    from augbench.errors import UsageError

    with pytest.raises(UsageError, match="forward"):
        create_method("dlb", CLASSES, {"forward": "both"})
    with pytest.raises(UsageError, match="temperature"):
        create_method("dlb", CLASSES, {"temperature": "hot"})
    with pytest.raises(UsageError, match="accepted: alpha, forward, temperature"):
        create_method("dlb", CLASSES, {"beta": "1"})

import math

import torch

from augbench.losses import kd_kl, soft_cross_entropy


def test_kd_kl_matches_formula():
    g = torch.Generator().manual_seed(0)
    student, teacher = torch.randn(7, 5, generator=g) * 3, torch.randn(7, 5, generator=g) * 3
    for t in (1.0, 3.0, 4.5):
        p = torch.softmax(teacher / t, 1).double()
        q = torch.softmax(student / t, 1).double()
        # T^2 * mean over samples of sum_c p_c (log p_c - log q_c)
        expected = t * t * (p * (p.log() - q.log())).sum(1).mean()
        assert math.isclose(kd_kl(student, teacher, t).item(), expected.item(), rel_tol=1e-5, abs_tol=1e-6)


def test_kd_kl_zero_for_identical_logits_and_gradient_only_to_student():
    logits = torch.randn(4, 3)
    assert kd_kl(logits, logits, 3.0).abs().item() < 1e-6
    student = torch.randn(4, 3, requires_grad=True)
    teacher = torch.randn(4, 3, requires_grad=True)
    kd_kl(student, teacher.detach(), 2.0).backward()
    assert student.grad is not None and teacher.grad is None


def test_soft_cross_entropy_equals_hard_for_one_hot():
    logits = torch.randn(6, 4)
    labels = torch.tensor([0, 1, 2, 3, 0, 1])
    hard = soft_cross_entropy(logits, labels)
    soft = soft_cross_entropy(logits, torch.nn.functional.one_hot(labels, 4).float())
    assert torch.allclose(hard, soft, atol=1e-6)

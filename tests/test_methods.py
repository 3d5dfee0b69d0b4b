"""The self-distillation baselines (LSR, Tf-KD_reg, CS-KD, PS-KD), the class-pair sampler and the budget.

Losses are checked on fixed logits against references written here from the
papers' formulas (and, for Tf-KD_reg, the official code's form). Tests over
the whole registry pick up a new method without a new test.
"""

import copy
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from augbench.data.samplers import SAMPLERS
from augbench.engine import build, train
from augbench.engine.budget import plan_budget
from augbench.errors import UsageError
from augbench.methods import METHODS, Batch, create_method

K = 5


class LogitTable(nn.Module):
    """A model whose logits for an image are a fixed row of a table, picked by the id in the image's first pixel."""

    def __init__(self, logits: torch.Tensor):
        super().__init__()
        self.table = nn.Parameter(logits.clone())

    def forward(self, images):
        return self.table[images[:, 0, 0, 0].long()]


def id_images(ids: torch.Tensor) -> torch.Tensor:
    images = torch.zeros(len(ids), 1, 2, 2)
    images[:, 0, 0, 0] = ids.float()
    return images


def fixed_logits(n=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, K, generator=g) * 2, torch.randint(0, K, (n,), generator=g)


def run_step(method, model, ids, labels, views=1):
    images = id_images(ids)
    return method.step(model, Batch([images] * views, labels, ids))


def kl_rows(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """sum_k p_k (log p_k - log q_k) per row, in double precision."""
    p, q = p.double(), q.double()
    return (p * (p.log() - q.log())).sum(1)


# -- losses on fixed logits ------------------------------------------------------------------------

def test_lsr_matches_reference():
    logits, labels = fixed_logits()
    method = create_method("lsr", K, {"epsilon": 0.2})
    out = run_step(method, LogitTable(logits), torch.arange(8), labels)
    log_p = torch.log_softmax(logits.double(), 1)
    # (1 - eps) * CE(y) + eps * (mean over classes of -log p): the smoothed target's CE, written another way.
    expected = (0.8 * -log_p[torch.arange(8), labels] + 0.2 * -log_p.mean(1)).mean()
    assert out.loss.item() == pytest.approx(expected.item(), rel=1e-5)
    assert out.forward_samples == 8


@pytest.mark.parametrize("multiplier", [100.0, 50.0])
def test_tfkd_reg_matches_reference_and_official_form(multiplier):
    logits, labels = fixed_logits()
    a, t, alpha = 0.9, 20.0, 0.3
    method = create_method("tfkd_reg", K, {"correct_prob": a, "temperature": t, "alpha": alpha,
                                           "multiplier": multiplier})
    out = run_step(method, LogitTable(logits), torch.arange(8), labels)
    designed = torch.full((8, K), (1 - a) / (K - 1), dtype=torch.float64)
    for i, y in enumerate(labels.tolist()):
        designed[i, y] = a
    teacher = torch.softmax(designed / t, 1)
    kl = kl_rows(teacher, torch.softmax(logits.double(), 1)).mean()
    expected = (1 - alpha) * F.cross_entropy(logits.double(), labels) + alpha * kl * multiplier / K
    assert out.loss.item() == pytest.approx(expected.item(), rel=1e-5)
    # The official code, written as it is: nn.KLDivLoss()'s element mean (sum / (n * K)) times multiplier.
    # With K = 5 classes this differs from the per-sample KL by the factor multiplier / K (20 or 10).
    official = F.kl_div(F.log_softmax(logits, 1), F.softmax(designed.float() / t, 1), reduction="mean") * multiplier
    assert out.parts["reg"] == pytest.approx(official.item(), rel=1e-5)
    assert out.parts["reg"] != pytest.approx(kl.item(), rel=1e-2)


def test_cskd_matches_reference():
    logits, labels = fixed_logits(seed=1)
    anchors, partners = torch.tensor([0, 1, 2, 3]), torch.tensor([4, 5, 6, 7])
    labels[partners] = labels[anchors]  # the sampler pairs same-class samples
    method = create_method("cskd", K, {"temperature": 4.0, "lambda_cls": 0.5})
    ids = torch.cat([anchors, partners])
    out = run_step(method, LogitTable(logits), ids, labels[ids])
    t = 4.0
    student, teacher = logits[anchors].double(), logits[partners].double()
    kl = kl_rows(torch.softmax(teacher / t, 1), torch.softmax(student / t, 1)).mean()
    expected = F.cross_entropy(student, labels[anchors]) + 0.5 * t * t * kl
    assert out.loss.item() == pytest.approx(expected.item(), rel=1e-5)
    assert out.forward_samples == 8 and out.labels.tolist() == labels[anchors].tolist()


def test_cskd_partner_gives_no_gradient():
    logits, labels = fixed_logits(seed=1)
    model = LogitTable(logits)
    method = create_method("cskd", K)
    run_step(method, model, torch.arange(8), labels).loss.backward()
    assert model.table.grad[:4].abs().sum() > 0
    assert model.table.grad[4:].abs().sum() == 0


def pskd_reference_loss(logits, labels, ids, memory, alpha):
    onehot = F.one_hot(labels, K).double()
    targets = onehot if memory is None else (1 - alpha) * onehot + alpha * memory[ids].double()
    return -(targets * torch.log_softmax(logits[ids].double(), 1)).sum(1).mean()


def test_pskd_uses_previous_epoch_memory_updated_once_per_epoch():
    logits, labels = fixed_logits(n=6, seed=2)
    model = LogitTable(logits)
    method = create_method("pskd", K, {"alpha_T": 0.8})
    method.setup(6, torch.device("cpu"))
    first, second = torch.tensor([4, 0, 2]), torch.tensor([1, 5, 3])

    method.on_epoch_start(0, 4)
    for ids in (first, second):
        out = run_step(method, model, ids, labels[ids])
        assert out.loss.item() == pytest.approx(pskd_reference_loss(logits, labels[ids], ids, None, 0).item(),
                                                rel=1e-5)  # first epoch: the labels
    assert not method.remembered.any()  # nothing swapped in during the epoch
    method.on_epoch_end(0, 4)
    epoch0 = torch.softmax(logits, 1)
    assert torch.allclose(method.memory, epoch0)

    with torch.no_grad():
        model.table.mul_(-0.5)  # the model changes during epoch 1
    method.on_epoch_start(1, 4)
    assert method.alpha_t == pytest.approx(0.8 * 2 / 4)
    for ids in (first, first):  # the same samples twice: both steps see epoch 0's predictions, not this epoch's
        out = run_step(method, model, ids, labels[ids])
        expected = pskd_reference_loss(model.table.detach(), labels[ids], ids, epoch0, 0.4)
        assert out.loss.item() == pytest.approx(expected.item(), rel=1e-5)
    method.on_epoch_end(1, 4)
    seen = torch.zeros(6, dtype=torch.bool)
    seen[first] = True
    assert torch.allclose(method.memory[seen], torch.softmax(model.table.detach(), 1)[seen])
    assert torch.allclose(method.memory[~seen], epoch0[~seen])  # not forwarded in epoch 1: keeps epoch 0's


@pytest.mark.parametrize("alpha_T,num_epochs", [(0.8, 4), (0.5, 10)])
def test_pskd_weight_rises_linearly_to_alpha_T(alpha_T, num_epochs):
    method = create_method("pskd", K, {"alpha_T": alpha_T})
    method.setup(4, torch.device("cpu"))
    weights = []
    for epoch in range(num_epochs):
        method.on_epoch_start(epoch, num_epochs)
        weights.append(method.alpha_t)
        method.on_epoch_end(epoch, num_epochs)
    assert weights == pytest.approx([alpha_T * (e + 1) / num_epochs for e in range(num_epochs)])
    assert weights[-1] == pytest.approx(alpha_T)


def test_pskd_state_round_trip_gives_the_same_targets():
    logits, labels = fixed_logits(n=6, seed=3)
    method = create_method("pskd", K)
    method.setup(6, torch.device("cpu"))
    for epoch in range(2):
        method.on_epoch_start(epoch, 3)
        run_step(method, LogitTable(logits * (epoch + 1)), torch.arange(6), labels)
        method.on_epoch_end(epoch, 3)
    restored = create_method("pskd", K, method.args)
    restored.setup(6, torch.device("cpu"))
    restored.load_state_dict(copy.deepcopy(method.state_dict()))
    for m in (method, restored):
        m.on_epoch_start(2, 3)
    ids = torch.arange(6)
    assert torch.equal(method.soft_targets(labels, ids), restored.soft_targets(labels, ids))


# -- batch mixing ----------------------------------------------------------------------------------

class ReversedMixup:
    """Mixup with the reversed batch as partners (timm's pairing) and lambdas drawn in turn from ``lams``.

    Targets may be hard labels or probabilities. Successive draws differ, so a
    method that re-draws where it should replay a mixing gets other numbers.
    """

    def __init__(self, *lams: float):
        self.lams, self.draws = lams, 0

    def sample(self, batch_size, image_size):
        lam = self.lams[self.draws % len(self.lams)]
        self.draws += 1
        return {"perm": torch.arange(batch_size).flip(0), "lam": lam}

    def apply(self, images, labels, params):
        perm, lam = params["perm"], params["lam"]
        targets = F.one_hot(labels, K).float() if labels.dim() == 1 else labels
        return lam * images + (1 - lam) * images[perm], lam * targets + (1 - lam) * targets[perm]


def linear_model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(12, K))


def mixed(x, lam=0.7):
    return lam * x + (1 - lam) * x.flip(0)


def random_batch(n=6, seed=4):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 3, 2, 2, generator=g), torch.randint(0, K, (n,), generator=g)


def soft_ce(logits, targets):
    return -(targets.double() * torch.log_softmax(logits.double(), 1)).sum(1).mean()


def test_lsr_and_tfkd_reg_transform_the_mixed_target():
    images, labels = random_batch()
    model = linear_model()
    logits = model(mixed(images)).detach()
    target = mixed(F.one_hot(labels, K).float())
    batch = Batch([images], labels, torch.arange(6), ReversedMixup(0.7))

    lsr = create_method("lsr", K).step(model, batch)
    assert lsr.loss.item() == pytest.approx(soft_ce(logits, 0.9 * target + 0.1 / K).item(), rel=1e-5)

    a, t, alpha = 0.99, 20.0, 0.1
    tfkd = create_method("tfkd_reg", K).step(model, batch)
    designed = mixed(a * F.one_hot(labels, K).float() + (1 - a) / (K - 1) * (1 - F.one_hot(labels, K).float()))
    kl = kl_rows(torch.softmax(designed / t, 1), torch.softmax(logits, 1)).mean() * 100.0 / K  # multiplier 100
    assert tfkd.loss.item() == pytest.approx(((1 - alpha) * soft_ce(logits, target) + alpha * kl).item(), rel=1e-5)


def test_cskd_mixes_partners_with_the_anchors_mixing():
    images, labels = random_batch(8)
    labels[4:] = labels[:4]
    model = linear_model()
    mixer = ReversedMixup(0.7, 0.2)
    out = create_method("cskd", K).step(model, Batch([images], labels, torch.arange(8), mixer))
    assert mixer.draws == 1  # the partners replay the anchors' mixing
    student, teacher = model(mixed(images[:4])).detach(), model(mixed(images[4:])).detach()
    kl = kl_rows(torch.softmax(teacher / 4, 1), torch.softmax(student / 4, 1)).mean()
    expected = soft_ce(student, mixed(F.one_hot(labels[:4], K).float())) + 16 * kl
    assert out.loss.item() == pytest.approx(expected.item(), rel=1e-5)


def test_pskd_mixes_label_and_memory_with_the_same_partners():
    images, labels = random_batch()
    model = linear_model()
    method = create_method("pskd", K, {"alpha_T": 0.8})
    method.setup(6, torch.device("cpu"))
    mixer = ReversedMixup(0.7, 0.4)
    method.on_epoch_start(0, 2)
    method.step(model, Batch([images], labels, torch.arange(6), mixer))
    method.on_epoch_end(0, 2)
    memory = torch.softmax(model(mixed(images, 0.7)).detach(), 1)  # the prediction at each sample's position
    assert torch.allclose(method.memory, memory, atol=1e-6)
    method.on_epoch_start(1, 2)
    out = method.step(model, Batch([images], labels, torch.arange(6), mixer))
    onehot = F.one_hot(labels, K).float()
    expected_target = 0.2 * mixed(onehot, 0.4) + 0.8 * mixed(memory, 0.4)
    expected = soft_ce(model(mixed(images, 0.4)).detach(), expected_target)
    assert out.loss.item() == pytest.approx(expected.item(), rel=1e-5)


@pytest.mark.parametrize("name", sorted(METHODS))
@pytest.mark.parametrize("mix", [{"mixup_alpha": 1.0}, {"cutmix_alpha": 1.0}])
def test_every_method_steps_under_the_recipe_mixer(name, mix):
    from augbench.augment.mixing import BatchMixer, MixConfig

    g = torch.Generator().manual_seed(5)
    images, labels = torch.randn(8, 3, 8, 8, generator=g), torch.randint(0, K, (8,), generator=g)
    labels[4:] = labels[:4]  # valid for the class-pair methods too
    method = create_method(name, K)
    method.setup(8, torch.device("cpu"))
    method.on_epoch_start(0, 1)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, K))
    views = [images + 0.1 * v for v in range(method.num_views)]
    mixer = BatchMixer(MixConfig(**mix), K)
    for _ in range(2):  # twice: methods that replay or remember use their state on the second step
        out = method.step(model, Batch(views, labels, torch.arange(8), mixer))
        assert torch.isfinite(out.loss)
        out.loss.backward()
        assert all(p.grad is not None for p in model.parameters())


# -- the class-pair sampler ------------------------------------------------------------------------

def test_class_pairs_sampler_pairs_distinct_same_class_samples():
    g = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 4, (203,), generator=g)
    labels[-1] = 4  # a class of one sample pairs with itself
    batches = SAMPLERS["class_pairs"](labels, 16, torch.Generator().manual_seed(1))
    assert len(batches) == 203 // 16
    anchors = torch.cat([b[:16] for b in batches])
    assert len(anchors.unique()) == len(anchors) == 16 * (203 // 16)  # each sample an anchor at most once
    for b in batches:
        assert len(b) == 32
        a, p = b[:16], b[16:]
        assert torch.equal(labels[a], labels[p])
        alone = labels[a] == 4
        assert torch.equal(a[alone], p[alone]) and bool((a[~alone] != p[~alone]).all())
    partners = torch.cat([b[16:] for b in batches])
    assert len(partners.unique()) > len(partners) // 2  # drawn at random, not a fixed buddy


def test_cskd_loader_batches_are_same_class_pairs_under_label_noise(small_config):
    setup = build(small_config(method="cskd", label_noise="sym:0.4", batch_size=32, train_subset=320),
                  device="cpu")
    assert setup.steps_per_epoch == 10
    for views, labels, index in setup.loader.epoch(0):
        assert views[0].shape[0] == 64
        assert torch.equal(labels[:32], labels[32:])
        assert torch.equal(setup.loader.labels[index], labels)


# -- budget and training ---------------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(METHODS))
@pytest.mark.parametrize("budget", ["epochs", "samples"])
def test_budget_plan_for_every_method(name, budget):
    passes = METHODS[name].forward_passes_per_sample
    plan = plan_budget(budget, epochs=5, steps_per_epoch=70, forward_passes_per_sample=passes)
    if budget == "epochs" or passes == 1:
        assert (plan.planned_steps, plan.num_epochs) == (350, 5)
    else:  # forwards each new sample twice: the forward samples of CE's 5 epochs in 2.5 epochs
        assert plan.planned_steps * passes == 350
        assert plan.num_epochs == math.ceil(5 / passes)


@pytest.mark.parametrize("name", sorted(METHODS))
@pytest.mark.parametrize("recipe", ["baseline", "mixup_cutmix"])
def test_every_method_trains_a_step_on_generated_data(name, recipe, small_config):
    setup = build(small_config(method=name, recipe=recipe, batch_size=16, train_subset=64), device="cpu")
    views, labels, index = next(iter(setup.loader.epoch(0)))
    before = [p.detach().clone() for p in setup.model.parameters()]
    optimizer = torch.optim.SGD(setup.model.parameters(), lr=0.1)
    setup.method.on_epoch_start(0, setup.num_epochs)
    out = setup.method.step(setup.model, Batch(views, labels, index, setup.recipe.mixer, setup.recipe.mix_policy))
    assert torch.isfinite(out.loss)
    assert 16 <= out.forward_samples <= 16 * setup.method.forward_passes_per_sample
    optimizer.zero_grad()
    out.loss.backward()
    optimizer.step()
    assert any(not torch.equal(b, p) for b, p in zip(before, setup.model.parameters()))


@pytest.mark.parametrize("name", sorted(METHODS))
def test_samples_budget_matches_ce_forward_samples(name, small_config, tmp_path):
    epochs, batch, train_size = 2, 32, 256
    config = small_config(method=name, budget="samples", epochs=epochs, batch_size=batch, train_subset=train_size)
    record = train(config, tmp_path / name, progress=False, log=lambda _: None)
    assert record["status"] == "finished" and record["budget"] == "samples"
    ce_forward = epochs * (train_size // batch) * batch
    # DLB's first step has nothing to replay: at most one batch short.
    assert ce_forward - batch <= record["forward_samples"] <= ce_forward
    passes = METHODS[name].forward_passes_per_sample
    assert record["epochs_trained"] == math.ceil(epochs / passes)


def test_pskd_resume_after_crash_equals_straight_run(tmp_path, small_config):
    from augbench.engine import Callback

    class Crash(Callback):
        def on_epoch_end(self, metrics):
            if metrics["epoch"] == 2:
                raise RuntimeError("simulated crash")

    config = small_config(method="pskd", epochs=3, batch_size=32, train_subset=256)
    straight = train(config, tmp_path / "straight", progress=False, log=lambda _: None)
    with pytest.raises(RuntimeError, match="simulated crash"):
        train(config, tmp_path / "resumed", callbacks=[Crash()], progress=False, log=lambda _: None)
    resumed = train(config, tmp_path / "resumed", resume=True, progress=False, log=lambda _: None)
    for key in ("test_acc", "test_nll", "best_val_acc", "forward_samples"):
        assert resumed[key] == straight[key], key


# -- arguments -------------------------------------------------------------------------------------

@pytest.mark.parametrize("name,arg,value", [("lsr", "epsilon", "1.5"), ("tfkd_reg", "correct_prob", "0"),
                                            ("tfkd_reg", "temperature", "-1"), ("cskd", "temperature", "0"),
                                            ("pskd", "alpha_T", "2")])
def test_out_of_range_arguments_are_usage_errors(name, arg, value):
    with pytest.raises(UsageError, match=f"--method-arg {arg}={float(value)}"):
        create_method(name, K, {arg: value})


def test_method_arguments_from_the_command_line(tmp_path):
    from augbench.cli import main

    out = tmp_path / "run"
    code = main(["train", "--dataset", "synthetic", "--method", "tfkd_reg", "--method-arg", "correct_prob=0.95",
                 "--method-arg", "alpha=0.5", "--epochs", "1", "--batch-size", "32", "--train-subset", "64",
                 "--budget", "samples", "--device", "cpu", "--no-progress", "--out", str(out)])
    assert code == 0
    import json

    record = json.loads((out / "result.json").read_text())
    assert record["method_args"] == {"correct_prob": 0.95, "temperature": 20.0, "alpha": 0.5, "multiplier": 100.0}
    assert record["budget"] == "samples" and record["forward_samples"] == 64
    assert main(["train", "--dataset", "synthetic", "--method", "pskd", "--method-arg", "alpha_T=high",
                 "--out", str(tmp_path / "bad")]) == 2
    assert not (tmp_path / "bad").exists()

"""Tests for augbench.models: every registered CIFAR variant, the timm fallback and errors."""

from __future__ import annotations

import pytest
import timm
import torch

import augbench.models as models
from augbench.errors import UsageError

CIFAR_MODELS = models.list_models()


@pytest.fixture(autouse=True)
def _one_thread():
    """Runs each test single-threaded: batches of 2 gain nothing from more threads, and on a
    busy machine per-op thread synchronisation made ResNet-110's forward take seconds."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_registry_lists_sorted_cifar_models_including_default() -> None:
    assert CIFAR_MODELS == sorted(CIFAR_MODELS)
    assert models.DEFAULT_MODEL in CIFAR_MODELS
    for name in ("cifar_resnet18", "cifar_resnet20", "cifar_wrn28_10", "cifar_vgg16_bn"):
        assert name in CIFAR_MODELS
    assert all(timm.is_model(name) for name in CIFAR_MODELS)


@pytest.mark.parametrize("name", CIFAR_MODELS)
@pytest.mark.parametrize(("in_chans", "size"), [(1, 28), (3, 32)])
def test_variant_maps_batch_to_logits(name: str, in_chans: int, size: int) -> None:
    model = timm.create_model(name, num_classes=10, in_chans=in_chans).eval()
    assert model.num_classes == 10
    with torch.no_grad():
        logits = model(torch.randn(2, in_chans, size, size))
    assert logits.shape == (2, 10)
    assert torch.isfinite(logits).all()


@pytest.mark.parametrize("name", CIFAR_MODELS)
def test_variant_refuses_pretrained(name: str) -> None:
    with pytest.raises(ValueError, match="pretrained"):
        timm.create_model(name, pretrained=True, num_classes=10)


def test_default_model_trains_one_step_and_has_timm_interface() -> None:
    torch.manual_seed(0)
    model = models.create(models.DEFAULT_MODEL, num_classes=10, in_chans=1)
    model = model.to(memory_format=torch.channels_last).train()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    x = torch.randn(8, 1, 28, 28).contiguous(memory_format=torch.channels_last)
    loss = torch.nn.functional.cross_entropy(model(x), torch.randint(0, 10, (8,)))
    loss.backward()
    opt.step()
    assert torch.isfinite(loss)

    feats = model.forward_features(x)
    assert feats.shape[:2] == (8, model.num_features)
    assert model.forward_head(feats, pre_logits=True).shape == (8, model.num_features)
    assert model.get_classifier().out_features == 10
    model.reset_classifier(5)
    assert model.num_classes == 5
    assert model(x).shape == (8, 5)


def test_create_accepts_plain_timm_model_on_28x28() -> None:
    model = models.create("resnet18", 10, 1).eval()
    with torch.no_grad():
        assert model(torch.randn(2, 1, 28, 28)).shape == (2, 10)


def test_create_passes_kwargs_to_timm() -> None:
    model = models.create("cifar_wrn16_4", 10, 3, drop_rate=0.3)
    assert model.layer1[0].drop_rate == 0.3


def test_create_unknown_model_raises_usage_error_naming_it() -> None:
    with pytest.raises(UsageError, match="'no_such_net'") as excinfo:
        models.create("no_such_net", 10, 1)
    assert "--model" in str(excinfo.value)
    assert models.DEFAULT_MODEL in str(excinfo.value)


@pytest.mark.parametrize(
    ("name", "low", "high"),
    [
        ("cifar_resnet8", 0.07e6, 0.09e6),
        ("cifar_resnet20", 0.25e6, 0.30e6),  # He et al. (2016): 0.27M
        ("cifar_resnet56", 0.80e6, 0.90e6),  # He et al. (2016): 0.85M
        ("cifar_wrn16_4", 2.6e6, 2.8e6),  # Zagoruyko and Komodakis (2016): 2.7M
    ],
)
def test_parameter_counts_match_papers(name: str, low: float, high: float) -> None:
    assert low <= _n_params(timm.create_model(name, num_classes=10)) <= high


def test_init_is_kaiming_for_convs_and_identity_for_bn() -> None:
    model = timm.create_model("cifar_resnet20", num_classes=10)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            assert torch.all(m.weight == 1) and torch.all(m.bias == 0)
    conv = model.layer3[1].conv1  # 64 -> 64, 3x3: fan_out = 576
    expected_std = (2.0 / (64 * 9)) ** 0.5
    assert abs(conv.weight.std().item() - expected_std) / expected_std < 0.1

"""The batched AutoAugment, RandAugment and TrivialAugment against torchvision's transforms."""

import pytest
import torch
from test_fast_path import _HostCopies, _HostReads
from torchvision.transforms import v2
from torchvision.transforms.v2._utils import _setup_fill_arg

from augbench.augment.ops import OPS
from augbench.augment.policy_ops import GEOMETRIC, IDENTITY, PIXEL_OPS, apply_ops

POLICIES = ("autoaugment", "randaugment", "trivialaugment")
#: Every operation of the three policies; the magnitudes each is tried at (signed where the policies sign them).
NAMES = [IDENTITY, *GEOMETRIC, *PIXEL_OPS]
MAGNITUDES = {
    "ShearX": [0.3, -0.3, 0.99, -0.99], "ShearY": [0.3, -0.99],
    "TranslateX": [4.0, -13.0, 8.9, 32.0], "TranslateY": [-4.0, 13.0],
    "Rotate": [30.0, -7.0, 90.0, 135.0, -135.0],
    "Brightness": [0.3, -0.3, 0.99, -0.99], "Color": [0.3, -0.3, 0.99, -0.99],
    "Contrast": [0.3, -0.3, 0.99, -0.99], "Sharpness": [0.3, -0.3, 0.99, -0.99],
    "Posterize": [8.0, 6.0, 4.0, 2.0], "Solarize": [1.0, 0.5, 0.0, 0.3],
    "AutoContrast": [0.0], "Equalize": [0.0], "Invert": [0.0], IDENTITY: [0.0],
}


def images(c, hw, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(0, 256, (12, c, hw, hw), dtype=torch.uint8, generator=g)
    x[:4] = x[:4] // 4 + 60  # low contrast: AutoContrast and Equalize have work to do
    x[4] = 77  # a flat image: AutoContrast and Equalize leave it as it is
    return x


@pytest.mark.parametrize("c,hw,fill", [(1, 28, [0]), (3, 32, [0, 0, 0]), (3, 32, [120, 80, 20]), (1, 28, [200])])
@pytest.mark.parametrize("name", NAMES)
def test_every_operation_equals_torchvisions_pixel_for_pixel(name, c, hw, fill):
    x = images(c, hw)
    reference = v2.TrivialAugmentWide()  # any policy: the operations are the base class's
    tv_fill = _setup_fill_arg(fill[0] if len(set(fill)) == 1 else fill)
    for magnitude in MAGNITUDES[name]:
        ours = apply_ops(x, torch.full((len(x),), NAMES.index(name)), torch.full((len(x),), magnitude), NAMES, fill)
        # torchvision's policies pass float(magnitudes[bin]): a float32 value
        m = int(magnitude) if name == "Posterize" else float(torch.tensor(magnitude))
        theirs = torch.stack([reference._apply_image_or_video_transform(img, name, m, "nearest", tv_fill)
                              for img in x])
        assert torch.equal(ours, theirs), (name, magnitude, (ours != theirs).float().mean().item())


@pytest.mark.parametrize("name", POLICIES)
@pytest.mark.parametrize("c", [1, 3])
def test_grouped_and_selected_paths_agree_and_the_selected_one_reads_nothing_back(name, c):
    x = images(c, 32, seed=1).repeat(4, 1, 1, 1)
    op = OPS[name](fill=[10] * c)
    grouped = op(x, torch.Generator().manual_seed(5))
    op.grouped = False
    op(x, torch.Generator().manual_seed(5))  # the constants are made once per device, on the first call
    with _HostReads() as reads, _HostCopies() as copies:
        selected = op(x, torch.Generator().manual_seed(5))
    assert reads.count == 0 and copies.count == 0  # on an accelerator: no wait for the device per step
    assert torch.equal(grouped, selected) and not torch.equal(grouped, x)


def _draws(op, b, steps=None):
    table = op.table(28, 28, torch.device("cpu"))
    return table, op._draw(table, b, torch.Generator().manual_seed(0), torch.device("cpu"))


def test_trivialaugment_draws_one_operation_and_bin_uniformly():
    op = OPS["trivialaugment"]()
    table, [(op_ids, bins)] = _draws(op, 140_000)
    assert table.names == list(v2.TrivialAugmentWide._AUGMENTATION_SPACE)  # torchvision's 14, Identity first
    assert torch.allclose(torch.bincount(op_ids, minlength=14).float() / len(op_ids), torch.full((14,), 1 / 14),
                          atol=0.003)
    assert torch.allclose(torch.bincount(bins, minlength=31).float() / len(bins), torch.full((31,), 1 / 31),
                          atol=0.003)


def test_randaugment_draws_num_ops_operations_at_the_fixed_magnitude():
    op = OPS["randaugment"](num_ops=3, magnitude=5)
    table, draws = _draws(op, 70_000)
    assert len(draws) == 3
    for op_ids, bins in draws:
        assert set(bins.tolist()) == {5}
        assert torch.allclose(torch.bincount(op_ids, minlength=14).float() / len(op_ids),
                              torch.full((14,), 1 / 14), atol=0.004)
    assert not torch.equal(draws[0][0], draws[1][0])


@pytest.mark.parametrize("policy", ["cifar10", "svhn", "imagenet"])
def test_autoaugment_draws_each_step_as_the_policy_table_says(policy):
    op = OPS["autoaugment"](policy=policy)
    table, draws = _draws(op, 100_000)
    subpolicies = v2.AutoAugment(op.transform.policy)._policies
    for step, (op_ids, _) in enumerate(draws):
        expected = torch.zeros(len(table.names))
        for subpolicy in subpolicies:
            name, probability, _ = subpolicy[step]
            expected[table.names.index(name)] += probability / len(subpolicies)
        expected[0] += 1 - expected.sum()  # not applied: Identity
        observed = torch.bincount(op_ids, minlength=len(table.names)).float() / len(op_ids)
        assert torch.allclose(observed, expected, atol=0.005), (step, observed, expected)


@pytest.mark.parametrize("name,args", [("autoaugment", {"policy": "svhn"}), ("randaugment", {"magnitude": 20}),
                                       ("trivialaugment", {})])
def test_magnitudes_are_torchvisions_values_signed_only_where_torchvision_signs_them(name, args):
    op = OPS[name](**args)
    h, w = 28, 24
    table = op.table(h, w, torch.device("cpu"))
    for k, row in enumerate(table.magnitudes):  # torchvision's magnitudes at this image size
        values = op.space[table.names[k]][0](op.bins, h, w) if table.names[k] in op.space else None
        assert torch.equal(row, torch.zeros(op.bins) if values is None else values.float())
    negative = torch.zeros(len(table.names)), torch.zeros(len(table.names))
    for op_ids, magnitude in op.draw(60_000, h, w, torch.Generator().manual_seed(0), torch.device("cpu")):
        allowed = table.magnitudes[op_ids]  # each magnitude is one of its operation's values, maybe negated
        assert ((allowed == magnitude.abs().unsqueeze(1)).any(1)).all()
        negative[0].index_add_(0, op_ids, (magnitude < 0).float())
        negative[1].index_add_(0, op_ids, (magnitude != 0).float())
    for k, name in enumerate(table.names):
        share = negative[0][k] / negative[1][k].clamp(min=1)
        if negative[1][k] > 500:
            assert abs(share - (0.5 if table.signed[k] else 0.0)) < 0.04, (name, share)


@pytest.mark.parametrize("name,args", [("autoaugment", {}), ("randaugment", {"num_ops": 3, "magnitude": 5}),
                                       ("trivialaugment", {})])
def test_batched_policies_change_images_about_as_much_as_torchvisions(name, args):
    """A coarse check of the whole transform against torchvision's: the average change per image."""
    torch.manual_seed(0)
    x = torch.randint(0, 256, (400, 1, 28, 28), dtype=torch.uint8)
    op = OPS[name](**args)
    ours = op(x, torch.Generator().manual_seed(0))
    theirs = torch.stack([op.sample(img) for img in x])

    def change(out):  # per image: mean absolute change, and whether it changed at all
        diff = (out.float() - x.float()).abs().mean(dim=(1, 2, 3))
        return diff.mean().item(), (diff > 0).float().mean().item()

    (ours_mean, ours_changed), (theirs_mean, theirs_changed) = change(ours), change(theirs)
    assert abs(ours_mean - theirs_mean) < 0.2 * theirs_mean, (ours_mean, theirs_mean)
    assert abs(ours_changed - theirs_changed) < 0.12, (ours_changed, theirs_changed)

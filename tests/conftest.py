import os

import pytest
import torch

# Two threads as on the reference machine (AUGBENCH_TEST_THREADS=1 when other jobs share the cores).
torch.set_num_threads(int(os.environ.get("AUGBENCH_TEST_THREADS", min(2, os.cpu_count() or 1))))


@pytest.fixture
def small_config():
    """A run on the generated data set that trains in a few seconds."""
    from augbench.config import RunConfig

    def make(**overrides):
        base = dict(dataset="synthetic", model="cifar_resnet8", method="ce", epochs=2, batch_size=64,
                    train_subset=640, lr=0.05, seed=3)
        base.update(overrides)
        return RunConfig(**base)

    return make

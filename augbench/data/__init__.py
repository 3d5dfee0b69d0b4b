"""Data: in-memory image data sets, stratified splits and label noise.

One file per data set family registers its loaders in :data:`DATASETS`
(:mod:`augbench.data.registry`); importing the family modules here is what
makes them ``--dataset`` choices.
"""

from augbench.data import cifar, fashion_mnist, imagefolder, synthetic, tiny_imagenet  # noqa: F401  (registration)
from augbench.data.cache import CACHE_DIR, CACHE_ENV, cache_root
from augbench.data.fashion_mnist import FASHION_MNIST_CLASSES, FASHION_MNIST_SYSTEM_DIR
from augbench.data.noise import NOISE_KINDS, add_label_noise, parse_label_noise
from augbench.data.registry import (
    DATASETS,
    ENV_VAR,
    ImageDataset,
    list_datasets,
    load_dataset,
    register_dataset,
    resize_images,
)
from augbench.data.splits import stratified_split, stratified_subset
from augbench.data.synthetic import make_synthetic

__all__ = [
    "CACHE_DIR",
    "CACHE_ENV",
    "DATASETS",
    "ENV_VAR",
    "FASHION_MNIST_CLASSES",
    "FASHION_MNIST_SYSTEM_DIR",
    "NOISE_KINDS",
    "ImageDataset",
    "add_label_noise",
    "cache_root",
    "list_datasets",
    "load_dataset",
    "make_synthetic",
    "parse_label_noise",
    "register_dataset",
    "resize_images",
    "stratified_split",
    "stratified_subset",
]

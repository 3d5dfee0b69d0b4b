"""Data: in-memory image data sets, stratified splits and label noise."""

from augbench.data.datasets import (
    CACHE_DIR,
    DATASETS,
    ENV_VAR,
    FASHION_MNIST_CLASSES,
    FASHION_MNIST_SYSTEM_DIR,
    ImageDataset,
    list_datasets,
    load_dataset,
    make_synthetic,
    register_dataset,
)
from augbench.data.noise import NOISE_KINDS, add_label_noise, parse_label_noise
from augbench.data.splits import stratified_split, stratified_subset

__all__ = [
    "CACHE_DIR",
    "DATASETS",
    "ENV_VAR",
    "FASHION_MNIST_CLASSES",
    "FASHION_MNIST_SYSTEM_DIR",
    "NOISE_KINDS",
    "ImageDataset",
    "add_label_noise",
    "list_datasets",
    "load_dataset",
    "make_synthetic",
    "parse_label_noise",
    "register_dataset",
    "stratified_split",
    "stratified_subset",
]

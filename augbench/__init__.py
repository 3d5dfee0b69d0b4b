"""augbench: which augmentations work with self-distillation, and by how much."""

__version__ = "0.1.0"

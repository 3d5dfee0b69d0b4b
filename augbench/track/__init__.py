"""Experiment tracking: W&B logging of the engine's runs (the records themselves: augbench.engine.record)."""

"""Hooks the engine calls, for tracking and pruning; the engine knows none by name."""

from __future__ import annotations

from typing import Any


class EarlyStop(Exception):
    """Raised by a callback to end a run early with a status (for example ``pruned``)."""

    def __init__(self, status: str, reason: str):
        super().__init__(reason)
        self.status = status
        self.reason = reason


class Callback:
    """Override what you need; all hooks are optional."""

    def on_start(self, config: dict[str, Any], resumed: bool) -> None:
        """Called once the run is set up, with the full resolved configuration."""

    def on_epoch_end(self, metrics: dict[str, Any]) -> None:
        """Called after each epoch's evaluation; may raise EarlyStop."""

    def on_finish(self, record: dict[str, Any]) -> None:
        """Called with the final result record (any status)."""

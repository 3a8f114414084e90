"""One exception hierarchy for the SDK's failures: catch ``SMARError`` to catch them all.

A failure is something the data, files, model or store did: a catalog that cannot be read, a model that cannot
load, a store that is unreachable, a filter a user typed. A call written wrongly in code (``k=0``, a blank query,
an unknown ``view`` or mapping field) raises ``ValueError`` or ``TypeError``, as in any Python library, naming the
argument and what it takes.
"""

from __future__ import annotations

from pathlib import Path


class SMARError(Exception):
    """Base class of every failure the SDK reports (a wrong argument in code is a ValueError or TypeError)."""


class CatalogError(SMARError):
    """A catalog or pairs file cannot be read at all (missing file, unreadable folder)."""


class RowError(SMARError):
    """One catalog row is unusable; the indexer records it as a rejection and moves on."""


class ImageError(RowError):
    """A product image is missing, unreachable, corrupt or too large."""


class ModelError(SMARError):
    """A model directory or encoder cannot be loaded or saved."""


class StoreError(SMARError):
    """A vector store failed: unknown connector, unreachable server, bad collection."""


class ConnectorNotFoundError(StoreError):
    """No connector is registered under the requested name."""


class VectorSizeError(StoreError):
    """The model's vector size does not match the collection's."""


class FilterError(SMARError):
    """A search filter expression is malformed."""


class TrainingError(SMARError):
    """Training cannot go on with these settings (the loss diverged)."""


def load_problem(exc: RuntimeError) -> str:
    """Torch's ``load_state_dict`` complaint on one line: its first tensor's problem and how many more there are
    (torch writes a heading, then one line per tensor)."""
    details = [line.strip() for line in str(exc).splitlines()[1:] if line.strip()] or [" ".join(str(exc).split())]
    return details[0] + (f" (and {len(details) - 1} more)" if len(details) > 1 else "")


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C during training. ``epochs_saved`` is how many finished epochs of this very run (same data and
    settings) are checkpointed in the folder ``checkpoint``, which a re-run resumes after (0: none, it starts
    over; None: interrupted while reading the data, before the run was known)."""

    def __init__(self, epochs_saved: int | None, checkpoint: Path | None) -> None:
        super().__init__(epochs_saved, checkpoint)
        self.epochs_saved = epochs_saved
        self.checkpoint = checkpoint

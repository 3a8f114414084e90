"""Per-epoch training checkpoints, so an interrupted ``smar-sdk train`` resumes where it stopped."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from .errors import ModelError

logger = logging.getLogger(__name__)

CHECKPOINT_DIR = ".checkpoint"


class EpochCheckpoint:
    """Training state after the last finished epoch, in ``<out_dir>/.checkpoint``.

    Trainable weights go to safetensors; optimizer, scheduler and random-generator states to a
    tensors-only file read back with ``weights_only`` (no code runs on load). A checkpoint is used
    only when its fingerprint (data and configuration) matches the run being resumed.
    """

    def __init__(self, out_dir: str | Path | None, fingerprint: str) -> None:
        self.directory = Path(out_dir) / CHECKPOINT_DIR if out_dir is not None else None
        self.fingerprint = fingerprint

    def _sibling(self, suffix: str) -> Path:
        assert self.directory is not None
        return self.directory.with_name(CHECKPOINT_DIR + suffix)

    def _finish_swap(self) -> None:
        """Complete a swap :meth:`save` was stopped in (a kill between its renames): the old checkpoint was moved
        aside only after the new one was written whole, so the new one is put in place."""
        old, staging = self._sibling(".old"), self._sibling(".tmp")
        if not self.directory.exists() and old.exists() and staging.exists():
            staging.rename(self.directory)
        if self.directory.exists():
            shutil.rmtree(old, ignore_errors=True)

    def _state(self) -> dict[str, Any] | None:
        """The saved state, or None when there is none."""
        if self.directory is None:
            return None
        self._finish_swap()
        if not (self.directory / "state.pt").is_file():
            return None
        return torch.load(self.directory / "state.pt", map_location="cpu", weights_only=True)

    def saved_epochs(self) -> int:
        """Finished epochs of this run a re-run would resume after (0 when none, or the state is another run's)."""
        try:
            state = self._state()
        except Exception:  # noqa: BLE001 - a damaged state resumes nothing (restore then says to delete it)
            return 0
        return int(state["epoch"]) if state and state.get("fingerprint") == self.fingerprint else 0

    def restore(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer, scheduler: Any,
                generator: torch.Generator) -> tuple[int, list[float], dict[str, Any]]:
        """Load the last state if it belongs to this run; return (epochs done, losses so far, the ``extra`` state
        saved with it)."""
        try:
            state = self._state()
            if state is None:
                return 0, [], {}
            if state.get("fingerprint") != self.fingerprint:
                logger.warning("the training checkpoint in %s is from another run (its data, field mapping or "
                               "configuration differ): training starts from epoch 1 and replaces it", self.directory)
                return 0, [], {}
            model.load_state_dict(load_file(str(self.directory / "weights.safetensors")), strict=False)
            optimizer.load_state_dict(state["optimizer"])
            scheduler.load_state_dict(state["scheduler"])
            generator.set_state(state["generator"])
            torch.set_rng_state(state["torch_rng"])
            return int(state["epoch"]), [float(x) for x in state["losses"]], state.get("extra") or {}
        except Exception as exc:
            raise ModelError(f"training checkpoint {self.directory} is unreadable ({exc}); "
                             "delete it to start over") from exc

    def save(self, epoch: int, model: torch.nn.Module, prefixes: tuple[str, ...], optimizer: torch.optim.Optimizer,
             scheduler: Any, generator: torch.Generator, losses: list[float],
             extra: dict[str, Any] | None = None) -> None:
        """Atomically replace the checkpoint with the state after ``epoch`` finished epochs: the model's weights
        whose names start with ``prefixes`` (the trained ones), the optimiser, scheduler and random states, and
        ``extra`` (tensors, lists and dicts of them only)."""
        if self.directory is None:
            return
        staging, old = self._sibling(".tmp"), self._sibling(".old")
        try:
            self._finish_swap()
            shutil.rmtree(staging, ignore_errors=True)
            staging.mkdir(parents=True)
            weights = {k: v.detach().contiguous().clone() for k, v in model.state_dict().items()
                       if k.startswith(prefixes)}
            save_file(weights, str(staging / "weights.safetensors"))
            torch.save({"fingerprint": self.fingerprint, "epoch": epoch, "losses": torch.tensor(losses),
                        "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                        "generator": generator.get_state(), "torch_rng": torch.get_rng_state(),
                        "extra": extra or {}},
                       staging / "state.pt")
            if self.directory.exists():  # moved aside, not deleted: a kill before the next rename loses no epoch
                self.directory.rename(old)
            staging.rename(self.directory)
            shutil.rmtree(old, ignore_errors=True)
        except OSError as exc:
            raise ModelError(f"cannot save the training checkpoint in {self.directory} after epoch {epoch}: "
                             f"{exc.strerror or exc}; free space or choose another --out") from exc

    def clear(self) -> None:
        if self.directory is not None:
            for folder in (self.directory, self._sibling(".tmp"), self._sibling(".old")):
                shutil.rmtree(folder, ignore_errors=True)

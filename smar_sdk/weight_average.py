"""Stochastic weight averaging: the trained weights become the mean of their values after every step of the last
epochs, a flatter point of the loss than the last step alone (Izmailov et al., 2018)."""

from __future__ import annotations

import torch


class WeightAverage:
    """A running sum of ``params`` over the steps it is told about; :meth:`apply` writes their mean into them."""

    def __init__(self, params: list[torch.nn.Parameter]) -> None:
        self.params = params
        self.sums = [torch.zeros_like(p, dtype=torch.float64) for p in params]
        self.steps = 0

    @torch.no_grad()
    def add(self) -> None:
        """Count the weights as they are now."""
        for total, param in zip(self.sums, self.params, strict=True):
            total.add_(param.detach())
        self.steps += 1

    @torch.no_grad()
    def apply(self) -> None:
        """Replace each weight by its mean over the counted steps (nothing when none was counted)."""
        if not self.steps:
            return
        for total, param in zip(self.sums, self.params, strict=True):
            param.copy_((total / self.steps).to(param.dtype))

    def state(self) -> dict[str, torch.Tensor | list[torch.Tensor]]:
        """Tensors only, for a ``weights_only`` checkpoint."""
        return {"sums": self.sums, "steps": torch.tensor(self.steps)}

    def load(self, state: dict) -> None:
        """Continue from :meth:`state` of the same parameters."""
        if len(state["sums"]) != len(self.sums):
            raise ValueError(f"the checkpoint averages {len(state['sums'])} weights, this run {len(self.sums)}")
        self.sums = [total.clone() for total in state["sums"]]
        self.steps = int(state["steps"])

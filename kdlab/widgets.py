"""Interactive widgets for the notebooks (ipywidgets)."""

from __future__ import annotations

from collections.abc import Sequence

import ipywidgets as widgets
import matplotlib.pyplot as plt
import torch
from torch import Tensor

__all__ = ["entropy_bits", "temperature_curve", "TemperatureExplorer"]


def entropy_bits(probabilities: Tensor) -> Tensor:
    """Shannon entropy ``H(p) = -sum_i p_i log2 p_i`` along the last dimension, in bits."""
    p = probabilities.clamp_min(1e-30)
    return -(probabilities * p.log2()).sum(-1)


def temperature_curve(logits: Tensor, temperatures: Sequence[float]) -> Tensor:
    """Entropy (bits) of ``softmax(logits / T)`` for each T; logits is one row of scores."""
    if logits.dim() != 1:
        raise ValueError(
            f"logits must be one vector of class scores, got shape {tuple(logits.shape)}"
        )
    return torch.stack([entropy_bits(torch.softmax(logits / t, dim=-1)) for t in temperatures])


class TemperatureExplorer:
    """A slider for T and one for the example: shows the image, ``softmax(z / T)`` of the
    teacher's logits ``z`` for it, and how the entropy grows with T.

    ``logits`` are (N, C) teacher logits, ``images`` (N, H, W) or (N, 1, H, W).
    ``widget`` is the ipywidgets box to display; :meth:`update` redraws (the sliders call it).
    """

    def __init__(
        self,
        logits: Tensor,
        images: Tensor,
        classes: Sequence[str],
        labels: Tensor | None = None,
        temperatures: tuple[float, float] = (0.5, 30.0),
    ):
        if logits.dim() != 2 or logits.shape[1] != len(classes):
            raise ValueError(
                f"logits must be (examples, {len(classes)} classes), got {tuple(logits.shape)}"
            )
        if len(images) != len(logits):
            raise ValueError(f"{len(images)} images for {len(logits)} rows of logits")
        self.logits = logits.detach().float().cpu()
        self.images = images.detach().cpu().reshape(len(images), *images.shape[-2:])
        self.classes = list(classes)
        self.labels = labels
        low, high = temperatures
        self.grid = torch.linspace(low, high, 120)
        self.temperature = widgets.FloatSlider(
            value=1.0, min=low, max=high, step=0.5, description="T", continuous_update=False
        )
        self.index = widgets.IntSlider(
            value=0, min=0, max=len(logits) - 1, description="example", continuous_update=False
        )
        self.output = widgets.Output()
        self.temperature.observe(lambda _: self.update(), names="value")
        self.index.observe(lambda _: self.update(), names="value")
        self.widget = widgets.VBox([widgets.HBox([self.temperature, self.index]), self.output])
        self.figure = None
        self.update()

    def state(self) -> dict:
        """The numbers on screen: soft targets at T, their entropy, and the prediction."""
        z = self.logits[self.index.value]
        p = torch.softmax(z / self.temperature.value, dim=-1)
        return {
            "probabilities": p,
            "entropy_bits": float(entropy_bits(p)),
            "predicted": self.classes[int(z.argmax())],
        }

    def update(self) -> None:
        s = self.state()
        i, t = self.index.value, self.temperature.value
        fig, (a0, a1, a2) = plt.subplots(
            1, 3, figsize=(12, 3), gridspec_kw={"width_ratios": [1, 3, 2]}
        )
        a0.imshow(self.images[i].numpy(), cmap="gray")
        a0.axis("off")
        truth = f"true: {self.classes[int(self.labels[i])]}\n" if self.labels is not None else ""
        a0.set_title(f"{truth}teacher: {s['predicted']}", fontsize=9)
        a1.bar(range(len(self.classes)), s["probabilities"].numpy())
        a1.set_xticks(range(len(self.classes)), self.classes, rotation=30, ha="right", fontsize=8)
        a1.set_ylim(0, 1)
        a1.set_title(f"softmax(z / T) at T = {t:g}")
        curve = temperature_curve(self.logits[i], self.grid.tolist())
        a2.plot(self.grid, curve)
        a2.axhline(torch.log2(torch.tensor(float(len(self.classes)))), ls="--", c="gray", lw=1)
        a2.plot([t], [s["entropy_bits"]], "o", c="C3")
        a2.set_xlabel("temperature T")
        a2.set_ylabel("entropy (bits)")
        a2.set_title(f"H = {s['entropy_bits']:.2f} bits (max dashed)")
        fig.tight_layout()
        self.output.clear_output(wait=True)
        with self.output:
            plt.show()
        self.figure = fig
        plt.close(fig)

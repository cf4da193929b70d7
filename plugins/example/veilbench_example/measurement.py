"""An example measurement: how much a protector shifts the brightness of the photos.

Everything a measurement declares is here: what it needs, its typed record (written to
``results.json`` under ``measurements.example_brightness``), its metric and direction (for
``veilbench compare``), its console line and its report section (``templates/``). torch is
imported inside ``evaluate`` only, so listing plugins stays fast.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from veilbench.measurements.contract import Measurement, Metric, MetricValue


@dataclass
class Brightness:
    """Mean grey level (0-255) of protected held-out photos and of their originals."""

    protected: float
    original: float
    n: int

    @property
    def shift(self) -> float:
        return abs(self.protected - self.original)


class BrightnessMeasurement(Measurement):
    name = "example_brightness"
    title = "Brightness of protected photos (example plugin)"
    description = "mean grey level of protected photos beside their originals (example)"
    needs = ("protected",)
    record = Brightness
    metrics = {"shift": Metric("brightness", "lower", "grey levels the protection adds or removes")}
    template = "_example_brightness.html"
    templates = Path(__file__).with_name("templates")
    nav = "Brightness"

    def evaluate(self, ctx):
        import torch

        protected = torch.cat([ctx.protected[p.identity].held_out for p in ctx.data.probes])
        original = torch.cat([p.held_out.tensor() for p in ctx.data.probes])
        return Brightness(float(protected.mean()), float(original.mean()), len(original))

    def values(self, record, where):
        metric = self.metrics["shift"]
        return [MetricValue(f"brightness/{where.key}", metric, record.shift)]

    def summary(self, sets, run):
        return [
            f"  {w.key:<24} brightness {b.protected:.1f} (originals {b.original:.1f})"
            for w in sets
            if (b := w.records.get(self.name)) is not None
        ]

    def view(self, sets, run):
        rows = [
            {"surrogate": w.key, "protected": b.protected, "original": b.original, "n": b.n}
            for w in sets
            if (b := w.records.get(self.name)) is not None
        ]
        return {"rows": rows}

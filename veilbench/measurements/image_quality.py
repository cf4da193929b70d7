"""Image quality: protected photos against their originals, and recovered ones when the
protector can be undone (SSIM, LPIPS with AlexNet, PSNR)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from veilbench.measurements.charts import number
from veilbench.measurements.contract import (
    Context,
    Measurement,
    Metric,
    MetricValue,
    RunView,
    Where,
)
from veilbench.measurements.msr import num
from veilbench.measurements.records import ImageQuality, mean

#: What the report says where a protector cannot be undone (its recovered metrics are None).
NO_RECOVERY = "no recovery (protector cannot be undone)"

# The paper's figures (Table 1: protected vs original; Table 2: recovered vs original).
PAPER_REFERENCE: dict[str, list[dict[str, str]]] = {
    "protected": [
        {"method": "veil (paper, Table 1)", "ssim": "0.011–0.012", "lpips": "1.247–1.287"},
        {"method": "V-UAP (paper, Table 1)", "ssim": "0.034–0.043", "lpips": "0.710–0.785"},
    ],
    "recovered": [
        {"method": "veil (paper, Table 2)", "ssim": "0.868–0.869", "lpips": "0.046–0.047"},
    ],
}
QUALITY = ("ssim", "lpips", "psnr")


@dataclass
class ImageMetrics:
    """Protected vs original; recovered vs original (None: the protector cannot be undone)."""

    protected: ImageQuality
    recovered: ImageQuality | None = None


class ImageQualityMeasurement(Measurement):
    name = "image_quality"
    title = "Image quality"
    description = "SSIM / LPIPS / PSNR of protected (and recovered) photos against originals"
    needs = ("protected",)
    record = ImageMetrics
    metrics = {
        "ssim_protected": Metric("ssim", "lower", "SSIM protected vs original: face visible"),
        "lpips_protected": Metric(
            "lpips", "higher", "LPIPS protected vs original: looks different"
        ),
        "psnr_protected": Metric("psnr", "lower", "PSNR protected vs original"),
        "ssim_recovered": Metric("recovery_ssim", "higher", "SSIM recovered vs original"),
        "lpips_recovered": Metric("recovery_lpips", "lower", "LPIPS recovered vs original"),
        "psnr_recovered": Metric("recovery_psnr", "higher", "PSNR recovered vs original"),
    }
    nav = "Image quality"
    template = "_image_metrics.html"
    order = 40

    def evaluate(self, ctx: Context) -> ImageMetrics:
        from veilbench.evaluation.protected import evaluate_images

        return evaluate_images(ctx.data, ctx.protected, ctx.device)

    def values(self, record: ImageMetrics, where: Where) -> list[MetricValue]:
        kinds = [("protected", record.protected)]
        if record.recovered is not None:
            kinds.append(("recovered", record.recovered))
        return [
            MetricValue(
                f"{name}/{where.key}/{kind}", self.metrics[f"{name}_{kind}"], getattr(q, name)
            )
            for kind, q in kinds
            for name in QUALITY
        ]

    def summary(self, sets: list[Where], run: RunView) -> list[str]:
        lines = []
        for w in sets:
            m = w.records.get(self.name)
            if m is None:
                continue
            p, r = m.protected, m.recovered
            recovered = f"recovered SSIM {num(r.ssim)}" if r else "no recovery"
            lines.append(
                f"  {w.key:<24} protected SSIM {num(p.ssim)} LPIPS {num(p.lpips)} | {recovered}"
            )
        return lines

    def headline(self, sets: list[Where], run: RunView) -> list[dict[str, Any]]:
        metrics = [m for w in sets if (m := w.records.get(self.name)) is not None]

        def quality(kind: str, key: str) -> float | None:
            return mean(getattr(getattr(m, kind), key) for m in metrics if getattr(m, kind))

        return [
            {
                "label": "Protected SSIM",
                "value": quality("protected", "ssim"),
                "pairs": None,
                "note": "lower = less of the face visible (paper 0.011–0.012)",
            },
            {
                "label": "Protected LPIPS",
                "value": quality("protected", "lpips"),
                "pairs": None,
                "note": "higher = looks less like the original (paper 1.247–1.287)",
            },
            {
                "label": "Recovered SSIM",
                "value": quality("recovered", "ssim"),
                "pairs": None,
                "note": "higher = better recovery with the veil (paper 0.868–0.869)"
                if any(m.recovered for m in metrics) or not metrics
                else NO_RECOVERY,
            },
        ]

    def view(self, sets: list[Where], run: RunView) -> dict[str, Any]:
        rows: dict[str, list[dict[str, Any]]] = {"protected": [], "recovered": []}
        for w in sets:
            m = w.records.get(self.name)
            if m is None:
                continue
            for kind in rows:
                q = getattr(m, kind)
                rows[kind].append(
                    {
                        "surrogate": w.key,
                        **{k: number(getattr(q, k)) if q else None for k in QUALITY},
                        "n": q.n if q else None,
                        # None: the protector declared that it cannot be undone
                        "no_recovery": NO_RECOVERY if q is None and kind == "recovered" else None,
                    }
                )
        return {"image_metrics": rows, "reference": PAPER_REFERENCE}

    def upgrade(self, old: dict[str, Any], doc: dict[str, Any]) -> Any:
        return old.get("image_metrics")

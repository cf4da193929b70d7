"""Is the face hidden from people? A face detector's rate and landmark error on protected
photos, and each target's rank-1 after processing a person would try (auto levels,
equalisation, the negative), beside the same on the originals."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from veilbench.measurements.contract import (
    Context,
    Measurement,
    Metric,
    MetricValue,
    RunView,
    Where,
)
from veilbench.measurements.msr import num
from veilbench.measurements.records import Rate, legacy_rate, rate_value

#: The registered attacks a person would try, applied at full amount.
PROCESSING = ("contrast_stretch", "equalize", "invert")


@dataclass
class FaceVisibility:
    """Is there still a face for a face detector (YuNet) in the protected photos?"""

    detected: Rate  # share of protected photos in which a face is found
    detected_clean: Rate  # the same on their originals (the detector's own rate)
    #: Mean distance of the 5 landmarks found on a protected photo from those found on its
    #: original, over the original's inter-ocular distance (photos detected in both).
    landmark_error: float | None
    n: int
    score_threshold: float = 0.7


@dataclass
class ProcessedRank1:
    """Rank-1 of each target on photos after one simple processing (e.g. equalisation)."""

    protected: dict[str, Rate]  # target -> rank-1 of the processed protected photos
    clean: dict[str, Rate]  # target -> rank-1 of the processed originals (baseline)
    n: int


@dataclass
class Perception:
    """Is the face hidden from people? Proxies beside SSIM/LPIPS, which can pass while a face
    is still visible: a face detector, and FR models after processing a person would try."""

    face: FaceVisibility | None = None
    processed: dict[str, ProcessedRank1] = field(default_factory=dict)  # processing -> rank-1


class PerceptionMeasurement(Measurement):
    name = "perception"
    title = "Is the face hidden from people?"
    description = "face-detector rate and rank-1 after simple processing of protected photos"
    needs = ("protected", "gallery")
    record = Perception
    metrics = {
        "face_detected": Metric(
            "face_detected", "lower", "a face detector still finds a face in protected photos"
        ),
        "landmark_error": Metric(
            "landmark_error", "higher", "landmarks on protected photos far from the original's"
        ),
        "rank1_processed_black": Metric(
            "rank1", "lower", "black-box rank-1 of protected photos after simple processing"
        ),
    }
    nav = "Perception"
    template = "_perception.html"
    order = 70

    def evaluate(self, ctx: Context) -> Perception:
        from veilbench.evaluation.perception import evaluate_perception

        processings = [ctx.registries["attacks"].get(name) for name in PROCESSING]
        config = ctx.config
        return evaluate_perception(
            ctx.targets,
            ctx.data,
            ctx.protected,
            processings,
            subset=config.robustness_on,
            max_images=config.max_attack_images,
        )

    def values(self, record: Perception, where: Where) -> list[MetricValue]:
        out = []
        face, key = record.face, where.key
        if face is not None:
            out.append(
                MetricValue.rated(
                    f"face_detected/{key}", self.metrics["face_detected"], face.detected
                )
            )
            out.append(
                MetricValue(
                    f"landmark_error/{key}", self.metrics["landmark_error"], face.landmark_error
                )
            )
        for processing, cell in record.processed.items():
            for target, rate in cell.protected.items():
                if not where.white_box(target):
                    mid = f"processed/{key}/{processing}->{target}"
                    out.append(MetricValue.rated(mid, self.metrics["rank1_processed_black"], rate))
        return out

    def summary(self, sets: list[Where], run: RunView) -> list[str]:
        lines = []
        for w in sets:
            seen = w.records.get(self.name)
            if seen is None or seen.face is None:
                continue
            after = " ".join(
                f"{name}={num(w.attacker_mean(c.protected))}" for name, c in seen.processed.items()
            )
            face = seen.face
            lines.append(
                f"  {w.key:<24} face found in {num(face.detected.value)} of protected photos "
                f"({num(face.detected_clean.value)} of originals) | attacker rank-1 after {after}"
            )
        return lines

    def view(self, sets: list[Where], run: RunView) -> dict[str, Any]:
        rows: list[dict[str, Any]] = []
        processings: list[str] = []
        for w in sets:
            p = w.records.get(self.name)
            if p is None:
                continue
            cells = {}
            for name, cell in p.processed.items():
                processings += [name] if name not in processings else []
                cells[name] = {
                    "black": w.attacker_mean(cell.protected),
                    "black_clean": w.attacker_mean(cell.clean),
                    "white": w.service_mean(cell.protected),
                    "n": cell.n,
                }
            face = p.face
            rows.append(
                {
                    "surrogate": w.key,
                    "detected": None if face is None else rate_value(face.detected),
                    "detected_clean": None if face is None else rate_value(face.detected_clean),
                    "landmark_error": None if face is None else face.landmark_error,
                    "n": 0 if face is None else face.n,
                    "threshold": None if face is None else face.score_threshold,
                    "cells": cells,
                }
            )
        return {"rows": rows, "processings": processings}

    def upgrade(self, old: dict[str, Any], doc: dict[str, Any]) -> Any:
        seen = old.get("perception")
        if not seen:
            return None
        face = seen.get("face")
        if face:
            n = face.get("n")
            face = {
                **face,
                "detected": legacy_rate(face.get("detected"), n),
                "detected_clean": legacy_rate(face.get("detected_clean"), n),
            }
        processed = {
            name: {
                **cell,
                **{
                    side: {
                        t: legacy_rate(v, cell.get("n")) for t, v in (cell.get(side) or {}).items()
                    }
                    for side in ("protected", "clean")
                },
            }
            for name, cell in (seen.get("processed") or {}).items()
        }
        return {"face": face, "processed": processed}

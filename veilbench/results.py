"""The results contract: one versioned JSON document per run, typed records, written atomically.

Everything that reads or writes a results file goes through this module: the runner builds a
:class:`ResultsDocument`, the report, ``veilbench compare``, the CLI summary and the tests read
one with :func:`read_results` / :meth:`ResultsDocument.from_dict`. Older ``schema_version``\\ s
are upgraded on read (:func:`upgrade`). The JSON Schema of the file is generated from these
records (:func:`json_schema`) and published as ``docs/results.schema.json``.

Schema (``schema_version`` 2), top-level keys:

- ``schema_version``, ``veilbench_version``, ``created_utc``
- ``environment``: python, torch, cuda, device name, OS, CPU count, git commit and ``git_dirty``
- ``plugins``: every plugin with package, version and status
- ``config``: the full effective configuration (seeds, profile and every hyper-parameter);
  paths are relative to the working folder, never a machine's absolute temp folders
- ``dataset`` (name, fingerprint of the photos used, alignment), ``split``, ``models`` (cards
  with weight sha256), ``skipped_models``
- ``results``: ``clean`` (target -> subset -> clean rank-1), ``surrogates`` (one
  :class:`SurrogateResults` per surrogate set, keyed ``a`` or ``a+b`` for an ensemble) and
  ``privacy`` (:class:`PrivacySummary` per surrogate set: derived, written for other tools'
  convenience and recomputed on read)
- ``timings`` (seconds), ``warnings``, ``problems`` (unusable files and identities, with reasons)

Every comparable number is a :class:`Metric` with a declared direction (see :data:`METRICS`):
white-box MSR and recovery quality should go up; black-box MSR, protected SSIM, impersonation and
time should go down; LPIPS of protected photos should go up. An adversary's reconstructions
re-identified (``reid``) or resembling the originals are a privacy loss: they should go down.
The perception proxies (:class:`Perception`): a face detector's rate on protected photos and an
attacker's rank-1 after simple processing should go down (higher is a privacy loss); landmark
error should go up. Numbers are JSON numbers, never strings; NaN is written as ``null``.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import json
import math
import os
import platform
import subprocess
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import veilbench
from veilbench.files import write_text_atomic

SCHEMA_VERSION = 2
SUBSETS = ("craft", "held_out")

# Records ------------------------------------------------------------------------------------


@dataclass
class MsrCell:
    """One surrogate set's protected photos, matched by one target model (1:N, top-1)."""

    msr: float | None  # share of protected photos answered like their clean version
    rank1_protected: float | None  # share of protected photos answered with the right person
    rank1_clean: float | None  # the same for the clean photos (the target's own accuracy)
    n: int


@dataclass
class ImageQuality:
    """Mean SSIM / LPIPS (AlexNet) / PSNR of ``n`` images against their originals."""

    ssim: float | None
    lpips: float | None
    psnr: float | None
    n: int


@dataclass
class ImageMetrics:
    """Protected vs original; recovered vs original (None: the protector cannot be undone)."""

    protected: ImageQuality
    recovered: ImageQuality | None = None


@dataclass
class RobustnessCurve:
    """MSR per target along one attack's sweep, on protected photos and on clean ones."""

    parameter: str
    strengths: list[float]
    protected: dict[str, list[float | None]]  # target -> MSR per strength
    clean: dict[str, list[float | None]]  # the same attack on clean photos (the baseline)


@dataclass
class CraftTiming:
    total: float
    per_veil: float
    per_image: float
    veils: int


@dataclass
class SurrogateFit:
    """How one veil's protected crafting photos sit for one surrogate (white-box criteria)."""

    cosine_min: float | None  # lowest cosine of a protected crafting photo to the clean centroid
    cosine_mean: float | None
    threshold: float | None  # the cosine that counts as a match (calibrated per model)
    matched: float | None  # share of protected crafting photos that meet the 1:N match


@dataclass
class ConvergenceRecord:
    """Whether one identity's veil reached its white-box criteria when crafted.

    An unconverged veil's white-box figures measure the optimiser stopping short, not the
    protection method: the report and ``compare`` keep them apart from privacy results.
    """

    converged: bool | None
    iterations: int | None  # sign steps used
    cap: int | None  # the most it was allowed
    until: str | None = None  # "converged" (stops when the criteria hold) or "fixed"
    rms: float | None = None  # mean pixel RMS protected vs original (the visual target)
    surrogates: dict[str, SurrogateFit] = field(default_factory=dict)


@dataclass
class ReidCell:
    """One target model's answers for reconstructed photos (1:N against the clean gallery)."""

    rank1: float | None  # share answered with the right person: re-identified
    msr: float | None  # share answered like the clean original photo
    n: int


@dataclass
class FaceVisibility:
    """Is there still a face for a face detector (YuNet) in the protected photos?"""

    detected: float | None  # share of protected photos in which a face is found
    detected_clean: float | None  # the same on their originals (the detector's own rate)
    #: Mean distance of the 5 landmarks found on a protected photo from those found on its
    #: original, over the original's inter-ocular distance (photos detected in both).
    landmark_error: float | None
    n: int
    score_threshold: float = 0.7


@dataclass
class ProcessedRank1:
    """Rank-1 of each target on photos after one simple processing (e.g. equalisation)."""

    protected: dict[str, float | None]  # target -> rank-1 of the processed protected photos
    clean: dict[str, float | None]  # target -> rank-1 of the processed originals (baseline)
    n: int


@dataclass
class AdversaryResult:
    """One adversary given ``k`` protected photos per person: how much of the faces it undoes.

    Every number here is a privacy LOSS when high (except LPIPS): the reconstructions are
    re-identified by the targets and resemble the originals. ``baseline`` is the do-nothing
    attacker (the protected photos themselves, the same ``k`` per person).
    """

    adversary: str
    k: int
    threat: str  # what the adversary is given, in words
    reid: dict[str, ReidCell]  # target -> reconstructions matched against the clean gallery
    quality: ImageQuality  # reconstruction vs original
    baseline: dict[str, ReidCell] = field(default_factory=dict)  # target -> protected photos
    identities: int = 0  # people attacked (those with at least k photos, k + 1 for a pair)
    seconds: float | None = None


@dataclass
class Perception:
    """Is the face hidden from people? Proxies beside SSIM/LPIPS, which can pass while a face
    is still visible: a face detector, and FR models after processing a person would try."""

    face: FaceVisibility | None = None
    processed: dict[str, ProcessedRank1] = field(default_factory=dict)  # processing -> rank-1


@dataclass
class SurrogateResults:
    """Everything measured for the veils of one surrogate set (one model, or an ensemble)."""

    surrogates: list[str]
    msr: dict[str, dict[str, MsrCell]]  # target -> subset -> cell
    image_metrics: ImageMetrics
    robustness: dict[str, RobustnessCurve] = field(default_factory=dict)  # attack -> curve
    impersonation: dict[str, float | None] = field(default_factory=dict)  # target -> rate
    # identity -> data-URI thumbnails: original, protected (a different photo unless
    # secret_samples), recovered, and veil only with secret_samples
    samples: dict[str, dict[str, str]] = field(default_factory=dict)
    craft_timing: CraftTiming | None = None
    evaluate_s: float | None = None
    #: identity -> its veil's convergence record (empty: not recorded, e.g. an older file or a
    #: protector with no veil to converge)
    convergence: dict[str, ConvergenceRecord] = field(default_factory=dict)
    #: Privacy under attack: every adversary at every k (see :class:`AdversaryResult`).
    adversaries: list[AdversaryResult] = field(default_factory=list)
    #: identity -> label -> thumbnail: the original, a protected photo (a different photo
    #: unless secret_samples) and each adversary's reconstruction of the original.
    adversary_samples: dict[str, dict[str, str]] = field(default_factory=dict)

    def best_adversary(self) -> AdversaryResult | None:
        """The adversary (and k) whose reconstructions black-box targets re-identify most."""
        scored = [
            (rate, a)
            for a in self.adversaries
            if (rate := _mean(c.rank1 for t, c in a.reid.items() if not self.white_box(t)))
            is not None
        ]
        return max(scored, key=lambda pair: pair[0])[1] if scored else None

    perception: Perception | None = None

    def white_box(self, target: str) -> bool:
        """A target that crafted these veils (the service's model) rather than an attacker's."""
        return target in self.surrogates

    def unconverged(self) -> list[str]:
        """Identities whose veil did not reach its white-box criteria within the cap."""
        return sorted(k for k, c in self.convergence.items() if c.converged is False)

    def attacker_mean(self, values: dict[str, float | None]) -> float | None:
        """The mean of per-target ``values`` over the black-box (attacker's) targets."""
        return _mean(v for t, v in values.items() if not self.white_box(t))

    def service_mean(self, values: dict[str, float | None]) -> float | None:
        """The mean of per-target ``values`` over the white-box (service's) targets."""
        return _mean(v for t, v in values.items() if self.white_box(t))


@dataclass
class PrivacyRates:
    """The service's rates (white-box targets) beside an attacker's (black-box targets)."""

    service_msr: float | None
    service_rank1: float | None
    attacker_msr: float | None
    attacker_rank1: float | None
    attacker_models: list[str]
    #: The best adversary's reconstructions: black-box rank-1 (re-identified by an attacker's
    #: model), and which adversary at which k that was. None: no adversary ran.
    reconstruction_rank1: float | None = None
    best_adversary: str | None = None
    #: Veils of this set that missed their white-box criteria: when > 0, ``service_*`` partly
    #: measures the optimiser stopping short, not the protection (see ``convergence``).
    unconverged_veils: int = 0


@dataclass
class Results:
    """The measurements: clean accuracy per target, and everything per surrogate set."""

    clean: dict[str, dict[str, float | None]] = field(default_factory=dict)
    surrogates: dict[str, SurrogateResults] = field(default_factory=dict)
    #: True only with ``secret_samples = true``: the samples then show veils and same-photo
    #: (original, protected) pairs, from which veils can be computed. Never share such a file.
    samples_contain_secrets: bool = False

    @property
    def targets(self) -> list[str]:
        names = list(self.clean)
        for s in self.surrogates.values():
            names += [t for t in s.msr if t not in names]
        return names

    def privacy(self) -> dict[str, dict[str, PrivacyRates]]:
        """The privacy summary, derived here and nowhere else: key -> subset -> rates.

        The paper reads high white-box MSR as utility (the service that crafted the veil still
        identifies the person) and low black-box MSR as privacy (an attacker's model fails).
        """
        summary: dict[str, dict[str, PrivacyRates]] = {}
        for key, s in self.surrogates.items():
            best = s.best_adversary()
            for subset in SUBSETS:
                white = [c[subset] for t, c in s.msr.items() if s.white_box(t) and subset in c]
                black = [c[subset] for t, c in s.msr.items() if not s.white_box(t) and subset in c]
                summary.setdefault(key, {})[subset] = PrivacyRates(
                    service_msr=_mean(c.msr for c in white),
                    service_rank1=_mean(c.rank1_protected for c in white),
                    attacker_msr=_mean(c.msr for c in black),
                    attacker_rank1=_mean(c.rank1_protected for c in black),
                    attacker_models=sorted(t for t in s.msr if not s.white_box(t)),
                    reconstruction_rank1=None
                    if best is None
                    else _mean(c.rank1 for t, c in best.reid.items() if not s.white_box(t)),
                    best_adversary=None if best is None else f"{best.adversary} k={best.k}",
                    unconverged_veils=len(s.unconverged()),
                )
        return summary


@dataclass
class ResultsDocument:
    """A whole results file. Provenance sections stay plain dicts (their keys are open)."""

    schema_version: int = SCHEMA_VERSION
    veilbench_version: str = veilbench.__version__
    created_utc: str = ""
    environment: dict[str, Any] = field(default_factory=dict)
    plugins: list[dict[str, Any]] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)
    dataset: dict[str, Any] = field(default_factory=dict)
    split: dict[str, Any] = field(default_factory=dict)
    models: dict[str, dict[str, Any]] = field(default_factory=dict)
    skipped_models: list[dict[str, Any]] = field(default_factory=list)
    results: Results = field(default_factory=Results)
    timings: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    problems: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def new(cls, config: dict[str, Any], plugins: list[dict[str, Any]]) -> ResultsDocument:
        return cls(created_utc=utc_now(), environment=environment(), plugins=plugins, config=config)

    def to_dict(self) -> dict[str, Any]:
        doc = _to_json(self)
        doc["results"]["privacy"] = _to_json(self.results.privacy())
        return doc

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> ResultsDocument:
        """A document of any known ``schema_version`` (older ones are upgraded first)."""
        from veilbench.errors import ConfigError

        doc = upgrade(doc)
        results = dict(doc.get("results") or {})
        results.pop("privacy", None)  # derived: recomputed, never trusted from the file
        try:
            return _from_json(cls, {**doc, "results": results})
        except (TypeError, ValueError, KeyError, AttributeError) as exc:
            raise ConfigError(f"not a valid veilbench results document: {exc}") from exc

    # Metrics --------------------------------------------------------------------------------

    def metrics(self) -> list[MetricValue]:
        """Every comparable number with its family and direction (what ``compare`` reads)."""
        out: list[MetricValue] = []
        for key, s in self.results.surrogates.items():
            for target, cells in s.msr.items():
                side = "white" if s.white_box(target) else "black"
                for subset, cell in cells.items():
                    where = f"{key}->{target}/{subset}"
                    out.append(MetricValue(f"msr/{where}", METRICS[f"msr_{side}"], cell.msr))
                    out.append(
                        MetricValue(
                            f"rank1/{where}", METRICS[f"rank1_{side}"], cell.rank1_protected
                        )
                    )
            kinds = [("protected", s.image_metrics.protected)]
            if s.image_metrics.recovered is not None:
                kinds.append(("recovered", s.image_metrics.recovered))
            for kind, q in kinds:
                for name in ("ssim", "lpips", "psnr"):
                    metric = METRICS[f"{name}_{kind}"]
                    out.append(MetricValue(f"{name}/{key}/{kind}", metric, getattr(q, name)))
            for attack, curve in s.robustness.items():
                for target, values in curve.protected.items():
                    side = "white" if s.white_box(target) else "black"
                    for strength, value in zip(curve.strengths, values, strict=False):
                        mid = f"robustness/{key}/{attack}@{strength:g}->{target}"
                        out.append(MetricValue(mid, METRICS[f"msr_{side}"], value))
            for target, rate in s.impersonation.items():
                mid = f"impersonation/{key}->{target}"
                out.append(MetricValue(mid, METRICS["impersonation"], rate))
            if s.convergence:
                out.append(
                    MetricValue(
                        f"unconverged/{key}", METRICS["unconverged"], float(len(s.unconverged()))
                    )
                )
            for a in s.adversaries:
                for target, cell in a.reid.items():
                    side = "white" if s.white_box(target) else "black"
                    mid = f"{key}/{a.adversary}@k{a.k}->{target}"
                    out.append(MetricValue(f"reid/{mid}", METRICS[f"reid_{side}"], cell.rank1))
                    out.append(MetricValue(f"reid_msr/{mid}", METRICS["reid_msr"], cell.msr))
                for name in ("ssim", "lpips", "psnr"):
                    mid = f"{name}/{key}/{a.adversary}@k{a.k}/reconstructed"
                    value = getattr(a.quality, name)
                    out.append(MetricValue(mid, METRICS[f"{name}_reconstructed"], value))
            out += _perception_metrics(key, s)
            if s.craft_timing is not None:
                out.append(
                    MetricValue(f"time/{key}/per_veil", METRICS["time"], s.craft_timing.per_veil)
                )
        return [m for m in out if m.value is not None]  # null = NaN: not comparable


def _perception_metrics(key: str, s: SurrogateResults) -> list[MetricValue]:
    """Face-detector rate and black-box rank-1 after processing: higher is a privacy loss."""
    if s.perception is None:
        return []
    out = []
    face = s.perception.face
    if face is not None:
        out.append(MetricValue(f"face_detected/{key}", METRICS["face_detected"], face.detected))
        out.append(
            MetricValue(f"landmark_error/{key}", METRICS["landmark_error"], face.landmark_error)
        )
    for processing, cell in s.perception.processed.items():
        for target, value in cell.protected.items():
            if not s.white_box(target):
                mid = f"processed/{key}/{processing}->{target}"
                out.append(MetricValue(mid, METRICS["rank1_processed_black"], value))
    return out


# Metric directions --------------------------------------------------------------------------


@dataclass(frozen=True)
class Metric:
    """A kind of number: its tolerance family, which way is better, and what it means."""

    family: str
    direction: Literal["higher", "lower"]
    meaning: str
    relative: bool = False  # tolerance as a fraction of the baseline (times), not absolute


@dataclass(frozen=True)
class MetricValue:
    id: str
    metric: Metric
    value: float | None

    def gain(self, base: float) -> float:
        """How much better than ``base`` (positive = better), in the tolerance's units."""
        delta = (self.value or 0.0) - base
        delta = delta if self.metric.direction == "higher" else -delta
        return delta / abs(base) if self.metric.relative and base else delta


METRICS: dict[str, Metric] = {
    "msr_white": Metric("msr", "higher", "white-box MSR: the service's model still matches"),
    "msr_black": Metric("msr", "lower", "black-box MSR: an attacker's model still matches"),
    "rank1_white": Metric("rank1", "higher", "white-box rank-1 of protected photos"),
    "rank1_black": Metric("rank1", "lower", "black-box rank-1 of protected photos"),
    "ssim_protected": Metric("ssim", "lower", "SSIM protected vs original: face visible"),
    "lpips_protected": Metric("lpips", "higher", "LPIPS protected vs original: looks different"),
    "psnr_protected": Metric("psnr", "lower", "PSNR protected vs original"),
    "ssim_recovered": Metric("recovery_ssim", "higher", "SSIM recovered vs original"),
    "lpips_recovered": Metric("recovery_lpips", "lower", "LPIPS recovered vs original"),
    "psnr_recovered": Metric("recovery_psnr", "higher", "PSNR recovered vs original"),
    "impersonation": Metric("impersonation", "lower", "a veil on others' photos answers its owner"),
    # An adversary's reconstructions: re-identified or resembling the original = privacy lost.
    "reid_black": Metric("reid", "lower", "attacker's model re-identifies reconstructed photos"),
    "reid_white": Metric("reid", "lower", "crafting model re-identifies reconstructed photos"),
    "reid_msr": Metric("reid", "lower", "reconstructed photos answered like their originals"),
    "ssim_reconstructed": Metric("ssim", "lower", "SSIM reconstruction vs original: face back"),
    "lpips_reconstructed": Metric("lpips", "higher", "LPIPS reconstruction vs original"),
    "psnr_reconstructed": Metric("psnr", "lower", "PSNR reconstruction vs original"),
    "time": Metric("time", "lower", "seconds to craft one veil", relative=True),
    "unconverged": Metric(
        "convergence", "lower", "veils that missed their white-box criteria within the cap"
    ),
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

#: How much worse each family may get before ``compare`` calls it a regression. Time is
#: relative (3.0 = four times as slow) and loose by default: CI machines are shared and noisy,
#: so only a gross slowdown fails; pass ``--tolerance time=0.2`` on a quiet, dedicated machine.
DEFAULT_TOLERANCE: dict[str, float] = {
    "msr": 0.02,
    "rank1": 0.02,
    "ssim": 0.01,
    "lpips": 0.02,
    "psnr": 0.5,
    "recovery_ssim": 0.01,
    "recovery_lpips": 0.02,
    "recovery_psnr": 0.5,
    "impersonation": 0.02,
    "reid": 0.02,
    "time": 3.0,
    "convergence": 0.0,
    "face_detected": 0.05,
    "landmark_error": 0.05,
}


def _mean(values: typing.Iterable[float | None]) -> float | None:
    known = [v for v in values if v is not None and math.isfinite(v)]
    return sum(known) / len(known) if known else None


# Upgrading older documents ------------------------------------------------------------------


def upgrade(doc: dict[str, Any]) -> dict[str, Any]:
    """Bring a document of any earlier ``schema_version`` to the current one (a new dict)."""
    version = doc.get("schema_version")
    if version == 1:
        doc = _upgrade_1_to_2(doc)
    return doc


def _upgrade_1_to_2(doc: dict[str, Any]) -> dict[str, Any]:
    """Version 1 kept one table per measurement (``results.msr[s][t]`` ...); 2 groups by ``s``."""
    old = doc.get("results") or {}
    craft_s = (doc.get("timings") or {}).get("craft_s") or {}
    evaluate_s = (doc.get("timings") or {}).get("evaluate_s") or {}
    surrogates = {}
    for key, msr in (old.get("msr") or {}).items():
        images = (old.get("image_metrics") or {}).get(key) or {}
        surrogates[key] = {
            "surrogates": key.split("+"),
            "msr": msr,
            "image_metrics": {
                "protected": images.get("protected") or _empty_quality(),
                "recovered": images.get("recovered"),
            },
            "robustness": (old.get("robustness") or {}).get(key) or {},
            "impersonation": (old.get("impersonation") or {}).get(key) or {},
            "samples": (old.get("samples") or {}).get(key) or {},
            "craft_timing": craft_s.get(key),
            "evaluate_s": evaluate_s.get(key),
        }
    return {
        **doc,
        "schema_version": 2,
        "results": {
            "clean": old.get("clean") or {},
            "surrogates": surrogates,
            # schema 1 always showed the veil and a same-photo pair when it had samples
            "samples_contain_secrets": any(
                bool(images) for images in (old.get("samples") or {}).values()
            ),
        },
    }


def _empty_quality() -> dict[str, Any]:
    return {"ssim": None, "lpips": None, "psnr": None, "n": 0}


# Dataclass <-> JSON -------------------------------------------------------------------------


def _to_json(value: Any) -> Any:
    """Records and containers -> JSON-safe values (NaN/inf -> None, numpy -> Python numbers)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _to_json(getattr(value, f.name)) for f in dataclasses.fields(value)}
    return _clean(value)


def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _from_json(tp: Any, value: Any) -> Any:
    """Build ``tp`` (a record, container or scalar type) from JSON, checking types."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(tp)
        if value is None and type(None) in options:
            return None
        for option in options:
            if option is not type(None):
                return _from_json(option, value)
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise TypeError(f"{tp.__name__} must be an object, got {type(value).__name__}")
        hints = _hints(tp)
        names = {f.name for f in dataclasses.fields(tp)}
        return tp(**{k: _from_json(hints[k], v) for k, v in value.items() if k in names})
    if origin is dict:
        if not isinstance(value, dict):
            raise TypeError(f"expected an object, got {type(value).__name__}")
        _, item = typing.get_args(tp)
        return {str(k): _from_json(item, v) for k, v in value.items()}
    if origin is list:
        if not isinstance(value, list):
            raise TypeError(f"expected a list, got {type(value).__name__}")
        (item,) = typing.get_args(tp)
        return [_from_json(item, v) for v in value]
    if origin is Literal:
        return value
    if tp is float:
        if value is None:
            return float("nan")
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise TypeError(f"expected a number, got {value!r}")
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"expected an integer, got {value!r}")
        return value
    if tp is str:
        if not isinstance(value, str):
            raise TypeError(f"expected a string, got {value!r}")
        return value
    return value  # Any


def json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a results file, generated from the records above."""
    defs: dict[str, Any] = {}

    def schema(tp: Any) -> dict[str, Any]:
        origin = typing.get_origin(tp)
        if origin in (typing.Union, types.UnionType):
            options = [schema(o) for o in typing.get_args(tp) if o is not type(None)]
            nullable = type(None) in typing.get_args(tp)
            return {"anyOf": options + ([{"type": "null"}] if nullable else [])}
        if dataclasses.is_dataclass(tp):
            if tp.__name__ not in defs:
                defs[tp.__name__] = {}  # placeholder against recursion
                hints = _hints(tp)
                fields_ = dataclasses.fields(tp)
                defs[tp.__name__] = {
                    "type": "object",
                    "description": (tp.__doc__ or "").strip().splitlines()[0],
                    "properties": {f.name: schema(hints[f.name]) for f in fields_},
                    "required": [
                        f.name
                        for f in fields_
                        if f.default is dataclasses.MISSING
                        and f.default_factory is dataclasses.MISSING
                    ],
                }
            return {"$ref": f"#/$defs/{tp.__name__}"}
        if origin is dict:
            return {"type": "object", "additionalProperties": schema(typing.get_args(tp)[1])}
        if origin is list:
            return {"type": "array", "items": schema(typing.get_args(tp)[0])}
        simple = {float: "number", int: "integer", str: "string", bool: "boolean"}
        if tp in simple:
            return {"type": simple[tp]}
        if tp is type(None):
            return {"type": "null"}
        return {}  # Any

    top = schema(ResultsDocument)
    defs["ResultsDocument"]["properties"]["schema_version"] = {"const": SCHEMA_VERSION}
    defs["Results"]["properties"]["privacy"] = {
        "type": "object",
        "description": "derived from surrogates (see Results.privacy); recomputed on read",
        "additionalProperties": {"type": "object", "additionalProperties": schema(PrivacyRates)},
    }
    # A float written as null is NaN: every number field accepts null.
    for definition in defs.values():
        for prop in definition.get("properties", {}).values():
            if prop == {"type": "number"}:
                prop["type"] = ["number", "null"]
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"https://veilbench.dev/schema/results-{SCHEMA_VERSION}.json",
        "title": "veilbench results",
        **top,
        "$defs": defs,
    }


# Provenance ---------------------------------------------------------------------------------


def utc_now() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")


def environment() -> dict[str, Any]:
    """Where a result was produced: versions, device and machine."""
    import numpy
    import torch

    cuda = torch.cuda.is_available()
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "cuda": torch.version.cuda if cuda else None,
        "device": torch.cuda.get_device_name(0) if cuda else "cpu",
        "cpu": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "os": platform.platform(),
        "hostname_hash": _short_hash(platform.node()),
        "git_commit": git_commit(),
        "git_dirty": git_dirty(),
    }


def _short_hash(text: str) -> str:
    import hashlib

    return hashlib.sha256(text.encode()).hexdigest()[:12]


def _git(*args: str) -> str | None:
    """Output of a git command in the veilbench source tree (None outside a checkout)."""
    root = Path(veilbench.__file__).resolve().parents[1]
    try:
        out = subprocess.run(
            ["git", "-C", str(root), *args], capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def git_commit() -> str | None:
    """The commit of the veilbench source tree, when it is a git checkout."""
    return _git("rev-parse", "HEAD") or None


def git_dirty() -> bool | None:
    """Whether tracked veilbench sources differ from that commit (the result may not match it)."""
    status = _git("status", "--porcelain", "--untracked-files=no", "--", "veilbench", "plugins")
    return None if status is None else bool(status)


def portable_path(path: str | os.PathLike | None) -> str | None:
    """A path as a results file may record it: relative to the working folder when inside it,
    ``~/...`` under the home folder, else only its last part (no machine's temp folders)."""
    if path is None:
        return None
    p = Path(path).expanduser()
    if not p.is_absolute():
        return p.as_posix()
    p = p.resolve()
    for base, prefix in ((Path.cwd().resolve(), ""), (Path.home().resolve(), "~/")):
        if base == p or base in p.parents:
            return prefix + (p.relative_to(base).as_posix() or ".")
    return f".../{p.name}"


# Files --------------------------------------------------------------------------------------


def _clean(value: Any) -> Any:
    """JSON-safe: NaN/inf -> None, tuples -> lists, numpy scalars -> Python numbers."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _to_json(value)
    if hasattr(value, "item") and callable(value.item):  # numpy / torch scalars
        return _clean(value.item())
    if isinstance(value, Path):
        return str(value)
    return value


def write_json_atomic(path: str | os.PathLike, document: Any) -> Path:
    """Write a document (a dict or a :class:`ResultsDocument`) as JSON, atomically."""
    if isinstance(document, ResultsDocument):
        document = document.to_dict()
    text = json.dumps(_clean(document), indent=2, allow_nan=False) + "\n"
    return write_text_atomic(path, text)


def read_results(path: str | os.PathLike) -> ResultsDocument:
    """Load a results file of any known schema version, checking it is one."""
    from veilbench.errors import ConfigError

    path = Path(path)
    try:
        doc = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read results file {path}: {exc}") from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("schema_version"), int):
        raise ConfigError(f"{path} is not a veilbench results file (no schema_version)")
    if doc["schema_version"] > SCHEMA_VERSION:
        raise ConfigError(
            f"{path} has schema_version {doc['schema_version']}; this veilbench reads up to "
            f"{SCHEMA_VERSION}: upgrade veilbench"
        )
    try:
        return ResultsDocument.from_dict(doc)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from exc


def validate(document: dict[str, Any]) -> None:
    """Check a results document (as JSON data) against :func:`json_schema` (needs jsonschema)."""
    import jsonschema

    jsonschema.validate(document, json_schema())


def main(argv: list[str]) -> int:
    """``python -m veilbench.results schema`` prints the JSON Schema;
    ``python -m veilbench.results validate FILE...`` checks results files against it."""
    if argv[:1] == ["schema"]:
        print(json.dumps(json_schema(), indent=2))
        return 0
    if argv[:1] == ["validate"] and argv[1:]:
        for name in argv[1:]:
            validate(json.loads(Path(name).read_text()))
            print(f"{name}: valid results (schema_version {SCHEMA_VERSION})")
        return 0
    print("usage: python -m veilbench.results schema | validate FILE...")
    return 2


if __name__ == "__main__":
    import sys

    sys.exit(main(sys.argv[1:]))

"""The measurement contract: one class per measurement, registered by ``register_measurements``.

A measurement says what it needs from a run, evaluates one surrogate set's protected photos
(or, with ``scope = "run"``, the run once), and returns a typed record (a dataclass) that
``results.json`` keeps under ``measurements.<name>``. Around that record it declares
everything the rest of veilbench shows: its metrics with their directions (``compare``), its
console summary lines, its report section (a Jinja template and the view it is given), its
headline figures, and the JSON Schema fragment of its record. The runner, the report,
``compare``, the schema and the console summary loop over the registered measurements and
name none. No torch at import: a measurement imports its heavy helpers inside ``evaluate``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from veilbench.measurements.records import Rate, mean

if TYPE_CHECKING:
    from veilbench.config import RunConfig
    from veilbench.data.faces import EvalData
    from veilbench.evaluation.protected import Protected, Targets

#: What a measurement may ask of a run (``Measurement.needs``).
NEEDS = {
    "protected": "the surrogate set's protected photos",
    "veils": "the secret each protected person was given (a veil), when the protector keeps one",
    "models": "the loaded models (targets and surrogates)",
    "gallery": "each target's clean gallery and clean answers",
    "attacks": "the attacks chosen with --attacks",
    "adversaries": "the adversaries chosen with --adversaries",
    "samples": "thumbnails are wanted (samples = true)",
    "timing": "the crafting time of the surrogate set",
}


@dataclass(frozen=True)
class Metric:
    """A kind of number: its tolerance family, which way is better, and what it means."""

    family: str
    direction: Literal["higher", "lower"]
    meaning: str
    relative: bool = False  # tolerance as a fraction of the baseline (times), not absolute


@dataclass(frozen=True)
class MetricValue:
    """One comparable number of a results document (what ``compare`` reads)."""

    id: str
    metric: Metric
    value: float | None
    #: The rate behind the value, when it is one: its per-photo outcomes let ``compare`` pair
    #: two runs photo by photo (None: a plain number, compared by the tolerance alone).
    rate: Rate | None = None

    @classmethod
    def rated(cls, id: str, metric: Metric, rate: Rate) -> MetricValue:
        """The value of ``rate``, keeping the rate for paired comparison."""
        return cls(id, metric, rate.value, rate)

    def gain(self, base: float) -> float:
        """How much better than ``base`` (positive = better), in the tolerance's units."""
        delta = (self.value or 0.0) - base
        delta = delta if self.metric.direction == "higher" else -delta
        return delta / abs(base) if self.metric.relative and base else delta


@dataclass
class Where:
    """One evaluated surrogate set as measurements read it back (metrics, summary, report).

    ``key`` names the set in metric ids and tables: the surrogate key (``a`` or ``a+b``), with
    the protector in front (``veil:a``) when the document holds several protectors.
    """

    key: str
    protector: str
    surrogates: list[str]
    records: dict[str, Any] = field(default_factory=dict)  # every measurement's record
    evaluate_s: float | None = None

    def white_box(self, target: str) -> bool:
        """A target that crafted these photos (the service's model) rather than an attacker's."""
        return target in self.surrogates

    def attacker_mean(self, values: dict[str, Any]) -> float | None:
        """The mean of per-target ``values`` (numbers or rates) over black-box targets."""
        return mean(_number(v) for t, v in values.items() if not self.white_box(t))

    def service_mean(self, values: dict[str, Any]) -> float | None:
        """The mean of per-target ``values`` (numbers or rates) over white-box targets."""
        return mean(_number(v) for t, v in values.items() if self.white_box(t))


def _number(value: Any) -> float | None:
    value = getattr(value, "value", value)
    return value if isinstance(value, int | float) and not isinstance(value, bool) else None


@dataclass
class RunView:
    """What the whole run offers a report section besides the sets: targets and provenance."""

    targets: list[str]
    records: dict[str, Any]  # run-scope measurements' records
    config: dict[str, Any]
    environment: dict[str, Any]
    timings: dict[str, Any]
    samples_contain_secrets: bool = False


@dataclass
class Context:
    """What a measurement is given to evaluate (its ``needs`` say which parts it reads)."""

    #: The run's configuration (:class:`veilbench.config.RunConfig`).
    config: RunConfig
    #: The prepared photos: ``data.probes`` (the protected people) and ``data.gallery``.
    data: EvalData
    #: Every target model with its clean gallery and clean answers (``targets.top1``).
    targets: Targets
    models: dict[str, Any]  # name -> loaded FaceModel
    device: Any  # the torch device
    executor: Any  # runs shards of work (``executor.map``), locally or on Ray
    registries: dict[str, Any]  # kind -> Registry (e.g. attacks a measurement applies)
    log: Callable[[str], None] = print
    protector: Any = None
    protector_name: str = ""
    #: The surrogate set: the models that crafted these photos (targets among them are white-box).
    members: list[str] = field(default_factory=list)
    #: identity -> its ProtectedFaces (``craft``, ``held_out``, ``craft_recovered``, ``veil``).
    protected: Protected | None = None
    attacks: list[Any] = field(default_factory=list)  # --attacks entries
    adversaries: list[Any] = field(default_factory=list)  # --adversaries entries
    craft_s: float | None = None  # seconds the runner spent crafting this set
    crafted_images: int = 0  # crafting photos protected in that time
    #: This set's records of the measurements evaluated before (those in ``after`` among them).
    records: dict[str, Any] = field(default_factory=dict)
    run_records: dict[str, Any] = field(default_factory=dict)  # run-scope records
    warnings: list[str] = field(default_factory=list)  # the run's warnings (see ``warn``)

    @property
    def key(self) -> str:
        return "+".join(self.members)

    def warn(self, message: str) -> None:
        """A run warning (results ``warnings``, the report's banner and the console)."""
        self.warnings.append(message)
        self.log(f"warning: {message}")


class Measurement:
    """Base class of a measurement. Subclasses set the class attributes and ``evaluate``.

    - ``name``: the key of its record (``measurements.<name>``) and of ``--measurements``.
    - ``title``, ``description``: the report section's heading and ``veilbench list``'s text.
    - ``needs``: what it reads from a run, documentation for ``veilbench list``: ``protected``
      (the protected photos), ``veils``, ``models``, ``gallery`` (clean galleries and
      answers), ``attacks``, ``adversaries``, ``samples``, ``timing`` (see :data:`NEEDS`).
    - ``after``: measurements whose records it reads: they are evaluated first (and selected
      with it); ``derive`` may rebuild its record from theirs when a file is read.
    - ``scope``: ``"surrogates"`` (once per protector and surrogate set) or ``"run"`` (once).
    - ``record``: the type of its record (a dataclass, or a ``dict[str, Record]``).
    - ``metrics``: metric kind -> :class:`Metric` (documents its directions).
    - ``template``: its report section (``_name.html``), searched in ``templates`` first; it
      gets ``section`` (``id``, ``title``, ``data``: what ``view`` returned) and the page's
      ``view``; start it with ``<section id="{{ section.id }}">`` so the page links to it.
    - ``order``: its place in the report and the console summary (lower first).
    """

    name: ClassVar[str]
    title: ClassVar[str] = ""
    description: ClassVar[str] = ""
    needs: ClassVar[tuple[str, ...]] = ()
    after: ClassVar[tuple[str, ...]] = ()
    scope: ClassVar[Literal["surrogates", "run"]] = "surrogates"
    record: ClassVar[Any] = dict
    metrics: ClassVar[dict[str, Metric]] = {}
    template: ClassVar[str | None] = None
    templates: ClassVar[Path | None] = None
    order: ClassVar[int] = 100  # place in the report and the console summary (lower first)
    anchor: ClassVar[str] = ""  # the section's id in the page (default: the name, "-" for "_")
    nav: ClassVar[str] = ""  # its link in the page's navigation (default: the title)

    @classmethod
    def info(cls) -> dict[str, Any]:
        """The registration metadata ``veilbench list measurements`` shows."""
        return {
            "title": cls.title,
            "description": cls.description,
            "scope": cls.scope,
            "needs": list(cls.needs),
            "after": list(cls.after),
            "metrics": {
                kind: {"family": m.family, "better": m.direction, "meaning": m.meaning}
                for kind, m in cls.metrics.items()
            },
        }

    def record_type(self) -> Any:
        """The record's type (override to import a heavy module only when it is needed)."""
        return self.record

    def applies(self, config: RunConfig) -> bool:
        """Whether a run with ``config`` can measure this (default: always)."""
        return True

    def evaluate(self, ctx: Context) -> Any:
        """The record for one surrogate set (or the run); None records nothing."""
        raise NotImplementedError

    def values(self, record: Any, where: Where) -> Iterable[MetricValue]:
        """Every comparable number of ``record`` (ids unique within the document)."""
        return ()

    def summary(self, sets: list[Where], run: RunView) -> list[str]:
        """Console lines after ``veilbench run`` (one per set, starting with its key)."""
        return []

    def headline(self, sets: list[Where], run: RunView) -> list[dict[str, Any]]:
        """Headline figures: dicts with ``label``, ``value``, ``pairs``, ``note`` (``alarm``)."""
        return []

    def view(self, sets: list[Where], run: RunView) -> dict[str, Any]:
        """What the template gets as ``section``: plain, complete data (never crashes)."""
        return {"rows": [(w.key, w.records.get(self.name)) for w in sets]}

    def derive(self, where: Where) -> Any:
        """A record computed from other measurements' records alone (None: not derived).

        Reading an older file fills a derived measurement's record this way."""
        return None

    def upgrade(self, old: dict[str, Any], doc: dict[str, Any]) -> Any:
        """This measurement's record from a schema-2 surrogate set ``old`` (None: absent)."""
        return None

    def schema(self, schema_of: Callable[[Any], dict[str, Any]]) -> dict[str, Any]:
        """The JSON Schema fragment of the record (default: generated from ``record``)."""
        return schema_of(self.record_type())

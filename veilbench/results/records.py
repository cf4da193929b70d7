"""The results document's records: the run, its protectors, their surrogate sets, and under
each the records of the registered measurements (``measurements.<name>``).

Schema 3 (one run may hold several protectors)::

    results:
      measurements: {clean: ...}              # run-scope measurements
      protectors:
        <protector>:
          protector, config                   # its name and effective settings
          surrogates:
            <key>:                            # "a", or "a+b" for an ensemble
              surrogates: [a, b]
              evaluate_s                      # provenance: seconds spent evaluating
              measurements: {msr: ..., image_quality: ..., <plugin>: ...}
      samples_contain_secrets

The measurements' record types are theirs (see :mod:`veilbench.measurements`); this module
knows none of them by name.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import veilbench
from veilbench.measurements.contract import Measurement, MetricValue, RunView, Where

SCHEMA_VERSION = 3


@dataclass
class SurrogateResults:
    """Everything measured for the photos one surrogate set protected (one model or several)."""

    surrogates: list[str]
    #: measurement name -> its record (a plain dict when its measurement is not installed)
    measurements: dict[str, Any] = field(default_factory=dict)
    evaluate_s: float | None = None  # provenance: seconds spent in the measurements

    def white_box(self, target: str) -> bool:
        """A target that crafted these photos (the service's model) rather than an attacker's."""
        return target in self.surrogates


@dataclass
class ProtectorResults:
    """One protector's results: its settings and each surrogate set it was crafted with."""

    protector: str
    config: dict[str, Any] = field(default_factory=dict)
    surrogates: dict[str, SurrogateResults] = field(default_factory=dict)


@dataclass
class Results:
    """The measurements: the run's own (e.g. clean rank-1), and per protector and surrogate set."""

    measurements: dict[str, Any] = field(default_factory=dict)
    protectors: dict[str, ProtectorResults] = field(default_factory=dict)
    #: True only with ``secret_samples = true``: the samples then show veils and same-photo
    #: (original, protected) pairs, from which veils can be computed. Never share such a file.
    samples_contain_secrets: bool = False

    def sets(self) -> list[Where]:
        """Every evaluated surrogate set, keyed ``a`` (``protector:a`` when there are several)."""
        several = len(self.protectors) > 1
        return [
            Where(
                key=f"{name}:{key}" if several else key,
                protector=name,
                surrogates=list(s.surrogates),
                records=s.measurements,
                evaluate_s=s.evaluate_s,
            )
            for name, p in self.protectors.items()
            for key, s in p.surrogates.items()
        ]

    @property
    def targets(self) -> list[str]:
        """Every model any record is about: run-scope tables first, then each set's."""
        names: list[str] = []
        for record in [*self.measurements.values(), *(w.records.get("msr") for w in self.sets())]:
            if isinstance(record, dict):
                names += [t for t in record if t not in names]
        return names

    def surrogate_set(self, key: str, protector: str | None = None) -> SurrogateResults:
        """One surrogate set's results (of ``protector``, or of the only one there is)."""
        if protector is None:
            if len(self.protectors) != 1:
                raise KeyError(f"{len(self.protectors)} protectors: name one of them")
            protector = next(iter(self.protectors))
        return self.protectors[protector].surrogates[key]

    def protector(self, name: str, config: dict[str, Any] | None = None) -> ProtectorResults:
        """The protector's results, created empty on first use."""
        if name not in self.protectors:
            self.protectors[name] = ProtectorResults(name, dict(config or {}))
        return self.protectors[name]


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
        from veilbench.results.provenance import environment, utc_now

        return cls(created_utc=utc_now(), environment=environment(), plugins=plugins, config=config)

    def to_dict(self) -> dict[str, Any]:
        from veilbench.results.codec import to_json

        return to_json(self)

    @classmethod
    def from_dict(
        cls, doc: dict[str, Any], measurements: dict[str, Measurement] | None = None
    ) -> ResultsDocument:
        """A document of any known ``schema_version`` (older ones are upgraded first)."""
        from veilbench.results.files import document_from_dict

        return document_from_dict(doc, measurements)

    def run_view(self) -> RunView:
        """The run as measurements' report sections and summaries read it."""
        targets = list(self.models)
        targets += [t for t in self.results.targets if t not in targets]
        return RunView(
            targets=targets,
            records=self.results.measurements,
            config=self.config,
            environment=self.environment,
            timings=self.timings,
            samples_contain_secrets=self.results.samples_contain_secrets,
        )

    def derive(self, measurements: dict[str, Measurement]) -> ResultsDocument:
        """(Re)compute the records derived from other records (e.g. the privacy summary), so
        they always agree with the records they come from, and exist for older files."""
        for where in self.results.sets():
            for m in measurements.values():
                if m.scope != "run" and (record := m.derive(where)) is not None:
                    where.records[m.name] = record
        return self

    def metrics(self, measurements: dict[str, Measurement] | None = None) -> list[MetricValue]:
        """Every comparable number with its family and direction (what ``compare`` reads)."""
        from veilbench.measurements import registered

        measurements = registered() if measurements is None else measurements
        self.derive(measurements)
        run = Where(key="", protector="", surrogates=[], records=self.results.measurements)
        out: list[MetricValue] = []
        for m in measurements.values():
            places = [run] if m.scope == "run" else self.results.sets()
            for where in places:
                record = where.records.get(m.name)
                if record is not None:
                    out += m.values(record, where)
        return [v for v in out if v.value is not None]  # null = NaN: not comparable

"""Built-in measurements (implemented in :mod:`veilbench.measurements`), one line each."""

from __future__ import annotations

from veilbench import hookimpl
from veilbench.measurements.adversaries import AdversaryMeasurement
from veilbench.measurements.clean import CleanRank1
from veilbench.measurements.convergence import Convergence
from veilbench.measurements.cost import CraftCost
from veilbench.measurements.image_quality import ImageQualityMeasurement
from veilbench.measurements.impersonation import Impersonation
from veilbench.measurements.msr import MsrMatrix
from veilbench.measurements.per_identity import PerIdentityMsr
from veilbench.measurements.perception import PerceptionMeasurement
from veilbench.measurements.privacy import Privacy
from veilbench.measurements.robustness import Robustness
from veilbench.measurements.samples import Samples
from veilbench.measurements.verification import VerificationMeasurement

BUILTIN_MEASUREMENTS = (
    CleanRank1,
    MsrMatrix,
    VerificationMeasurement,
    PerIdentityMsr,
    Convergence,
    AdversaryMeasurement,
    Privacy,
    ImageQualityMeasurement,
    Robustness,
    Impersonation,
    PerceptionMeasurement,
    Samples,
    CraftCost,
)


@hookimpl
def register_measurements(register):
    for measurement in BUILTIN_MEASUREMENTS:
        register(measurement.name, measurement, **measurement.info())

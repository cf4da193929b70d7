"""The batched crafting engine behind every veil-style protector (Algorithm 1 of the paper).

One loop crafts many perturbations ("units") at once: the crafting photos of K units are
stacked into one batch, each photo is blended with its own unit's perturbation,

    x' = alpha * x + (1 - alpha) * delta                                  (eq. 12)
    L  = sum_i [ L_fea(x_i') - lambda * L_vis(x_i, x_i') + mu * L_var(x_i') ]   (eq. 13)

and one backward pass gives every unit's gradient (the per-unit losses are independent). Each
unit then takes its own MI-FGSM sign step (``g = decay * g + grad / ||grad||_1``;
``delta -= step * sign(g)``), with the step following a schedule from ``step_start`` to
``step_end``. A unit is a person (person-wise veils: V-UAP and the veil) or one photo (AVIH).

Determinism: each unit's random start comes from its own generator, seeded from
``(seed, unit name)``, and nothing couples units, so on CPU a unit's result does not depend on
which other units share its batch or in which order they come.

GPU: the loop itself never waits for the device. The layout of the active units (index
tensors, their photos, their clean feature sets) is built once and rebuilt only when units stop
early; a non-finite gradient is recorded on the device (the first bad iteration per unit) and
raised at the next early-stop checkpoint or after the loop, never saved. ``precision`` (bf16 /
fp16 autocast), ``channels_last`` and ``compile_models`` are the speed options.

The package, one module per step: :mod:`.config` (settings, each class validating its own
fields), :mod:`.calibration` (per-surrogate scales and the white-box criteria),
:mod:`.surrogates` (the models as the loop calls them, and their provenance), :mod:`.layout`
(where the active units sit in a batch), :mod:`.loop` (set-up, step, record),
:mod:`.convergence` (the typed record every reader uses), :mod:`.cache` (resume from disk),
:mod:`.craft` (many identities, or one batch with :func:`craft_batch`) and :mod:`.protector`.
"""

from __future__ import annotations

from veilbench.protectors.contract import make_config
from veilbench.protectors.engine.cache import veil_path
from veilbench.protectors.engine.calibration import Calibration, calibrate
from veilbench.protectors.engine.config import (
    GAP_REFERENCE,
    MAX_FEATURE_BOOST,
    MAX_FEATURE_WEIGHT,
    CraftConfig,
    Objective,
    require_non_negative,
    require_positive,
    step_size,
)
from veilbench.protectors.engine.convergence import (
    ConvergenceRecord,
    SurrogateFit,
    VeilConvergence,
)
from veilbench.protectors.engine.craft import craft_batch, craft_many
from veilbench.protectors.engine.loop import Crafted, unit_seed
from veilbench.protectors.engine.protector import EngineProtector
from veilbench.protectors.engine.surrogates import describe_surrogates

__all__ = [
    "GAP_REFERENCE",
    "MAX_FEATURE_BOOST",
    "MAX_FEATURE_WEIGHT",
    "Calibration",
    "ConvergenceRecord",
    "CraftConfig",
    "Crafted",
    "EngineProtector",
    "Objective",
    "SurrogateFit",
    "VeilConvergence",
    "calibrate",
    "craft_batch",
    "craft_many",
    "describe_surrogates",
    "make_config",
    "require_non_negative",
    "require_positive",
    "step_size",
    "unit_seed",
    "veil_path",
]

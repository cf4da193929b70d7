"""Built-in attacks for robustness sweeps."""

from __future__ import annotations

from veilbench import hookimpl
from veilbench.attacks import BUILTIN_ATTACKS


@hookimpl
def register_attacks(register):
    for name, (factory, parameter, sweep, description) in BUILTIN_ATTACKS.items():
        register(name, factory, parameter=parameter, sweep=sweep, description=description)

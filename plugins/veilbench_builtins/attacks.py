"""Built-in attacks for robustness sweeps (implemented in :mod:`veilbench.attacks`)."""

from __future__ import annotations

from veilbench import hookimpl
from veilbench.lazy import factory

#: name -> (strength parameter, default sweep, description); the factory is
#: ``veilbench.attacks:<name>``, imported only when an attack is created.
BUILTIN_ATTACKS: dict[str, tuple[str, list[float], str]] = {
    "gaussian": ("sigma (0-255 units)", [0, 10, 30, 60, 90, 120, 150], "Gaussian noise"),
    "salt_pepper": (
        "amount (fraction of pixels)",
        [0, 0.01, 0.05, 0.1, 0.2],
        "salt-and-pepper noise",
    ),
    "median": ("kernel size (px)", [1, 3, 5, 7], "median filter"),
    "jpeg": ("quality", [100, 90, 75, 50, 30, 10], "JPEG re-encoding"),
    "resize": ("scale", [1.0, 0.75, 0.5, 0.35, 0.25], "down-and-up resizing"),
    "blur": ("sigma (px)", [0, 0.5, 1, 2, 3], "Gaussian blur"),
    "nlmeans": ("h (0-255 units)", [0, 3, 6, 10, 15], "non-local means denoising (purification)"),
    # What a person does to a photo to see the face (the perception proxy uses amount 1).
    "contrast_stretch": ("amount (0-1)", [0, 0.5, 1], "auto levels (1-99th percentile stretch)"),
    "equalize": ("amount (0-1)", [0, 0.5, 1], "histogram equalisation per channel"),
    "invert": ("amount (0-1)", [0, 1], "channel inversion (the negative)"),
}


@hookimpl
def register_attacks(register):
    for name, (parameter, sweep, description) in BUILTIN_ATTACKS.items():
        register(
            name,
            factory(f"veilbench.attacks:{name}"),
            parameter=parameter,
            sweep=sweep,
            description=description,
        )

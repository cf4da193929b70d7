"""Built-in protectors: the person-specific veil, its baselines, obfuscations and cloaks."""

from __future__ import annotations

from veilbench import hookimpl
from veilbench.lazy import factory

#: name -> (module:class, config class or "", description); imported only when created.
BUILTIN_PROTECTORS: dict[str, tuple[str, str, str]] = {
    "veil": (
        "veil:VeilProtector",
        "veil:VeilConfig",
        "person-specific veil (the paper's Algorithm 1)",
    ),
    "vuap": (
        "baselines:VUAPProtector",
        "baselines:VUAPConfig",
        "V-UAP baseline (eq. 15): per-image feature distance, no block variance",
    ),
    "avih": (
        "baselines:AVIHProtector",
        "baselines:AVIHConfig",
        "AVIH-style per-image protection (cost grows with the number of images)",
    ),
    "none": ("baselines:NoneProtector", "", "no protection (clean baseline)"),
    "face_blur": (
        "obfuscation:FaceBlurProtector",
        "obfuscation:FaceBlurConfig",
        "Gaussian blur of the face crop (strength: sigma, px)",
    ),
    "pixelate": (
        "obfuscation:PixelateProtector",
        "obfuscation:PixelateConfig",
        "mosaic of square blocks (strength: block, px)",
    ),
    "mask": (
        "obfuscation:MaskProtector",
        "obfuscation:MaskConfig",
        "solid box over the face or the eye band, from the 5 landmarks (strength: opacity)",
    ),
    "ksame": (
        "obfuscation:KSameProtector",
        "obfuscation:KSameConfig",
        "k-same-pixel: mean of the k nearest faces of a public pool (strength: k)",
    ),
    "pgd": (
        "cloaks:PGDProtector",
        "cloaks:PGDConfig",
        "untargeted L-inf PGD cloak on the surrogates (strength: epsilon, 0-255)",
    ),
    "mifgsm": (
        "cloaks:MIFGSMProtector",
        "cloaks:MIFGSMConfig",
        "untargeted L-inf MI-FGSM cloak on the surrogates (strength: epsilon, 0-255)",
    ),
    "fawkes": (
        "cloaks:FawkesProtector",
        "cloaks:FawkesConfig",
        "Fawkes-style cloak toward a dissimilar public-pool identity (strength: epsilon)",
    ),
    "tipim": (
        "cloaks:TIPIMProtector",
        "cloaks:TIPIMConfig",
        "TIP-IM-style cloak: impersonate the nearest public-pool identity (strength: epsilon)",
    ),
}


@hookimpl
def register_protectors(register):
    for name, (target, config, description) in BUILTIN_PROTECTORS.items():
        extra = {"config": f"veilbench.protectors.{config}"} if config else {}
        register(
            name,
            factory(f"veilbench.protectors.{target}"),
            description=description,
            **extra,
        )

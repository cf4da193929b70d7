"""Errors a user can act on. The CLI prints them as one line (the message says the fix)."""

from __future__ import annotations


class VeilbenchError(Exception):
    """Base class: anything raised as this is shown without a traceback."""


class ConfigError(VeilbenchError):
    """A setting, option or config file is wrong."""


class RegistryError(VeilbenchError):
    """A name is unknown, ambiguous, or registered twice."""


class PluginError(VeilbenchError):
    """A plugin failed to load (only raised when strict plugin loading is on)."""


class WeightsError(VeilbenchError):
    """A weight file is missing, partial or corrupt."""


class DataError(VeilbenchError):
    """An image or dataset cannot be used."""


class ModelInputError(VeilbenchError):
    """A model was given an input it cannot take (wrong shape, size or channels)."""


class NumericalError(VeilbenchError):
    """A computation produced NaN or inf (e.g. a gradient while crafting)."""


class VeilFileError(VeilbenchError):
    """A veil file cannot be read or does not fit the images it is applied to."""

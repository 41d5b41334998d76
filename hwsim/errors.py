"""Exceptions hwsim raises on purpose.

Every user-facing error subclasses :class:`HwsimError` and a matching builtin, so callers can catch
either (attrs' habit). The CLI prints their message on one line and exits non-zero, without a traceback.
"""


class HwsimError(Exception):
    """Base class of every error hwsim raises for bad input or an impossible request."""


class ConfigError(HwsimError, ValueError):
    """A value given by the user (argument, file field) is invalid; the message names it."""


class RegistryError(HwsimError, KeyError):
    """A name looked up in a registry does not exist; the message lists near matches."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class RuntimeUnavailable(HwsimError, ImportError):
    """A reference runtime (onnxruntime, TFLite, torch) is not installed."""

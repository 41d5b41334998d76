"""Exceptions hwsim raises on purpose.

Every user-facing error subclasses :class:`HwsimError` and a matching builtin, so callers can catch
either (attrs' habit). The CLI prints their message on one line and exits non-zero, without a traceback.
"""


class HwsimError(Exception):
    """Base class of every error hwsim raises for bad input or an impossible request.

    ``exit_status`` is what the ``hwsim`` command exits with when this error ends it (2: the user can fix
    the input).
    """

    exit_status = 2


class ConfigError(HwsimError, ValueError):
    """A value given by the user (argument, file field) is invalid; the message names it.

    ``loc`` is where in the file being read the fault lies (``("sweep", "grid", "recipe.weights.bits")``) when
    the raiser knows it but not the file's lines: the caller that read the file adds ``file:line``.
    """

    loc: tuple = ()


class RegistryError(HwsimError, KeyError):
    """A name looked up in a registry does not exist; the message lists near matches."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class RuntimeUnavailable(HwsimError, ImportError):
    """A reference runtime (onnxruntime, TFLite, torch) is not installed."""


class UsageError(HwsimError):
    """The command line itself is wrong (an unknown option, a missing argument, a number out of range)."""


class PointsFailed(HwsimError):
    """``hwsim run`` finished, but some points raised; their rows say why (exit status 1, not 2)."""

    exit_status = 1


class HwsimWarning(UserWarning):
    """A value hwsim accepts but doubts (e.g. far outside every shipped device); the CLI prints one line."""

"""Registry of learners: ``rhm.learners.get(name)`` returns the class, ``names()`` lists them.

Every learner follows :class:`rhm.learners.base.Learner` (fit / predict / score on integer tokens). A module
registers its classes with ``@register``; modules (and torch) are imported lazily, on first use, so that
`import rhm` and the numpy-only parts (grammar, sampling, oracle) never load torch.
"""

from __future__ import annotations

import importlib

# name -> module that defines it (imported on first use)
_MODULES = {
    "chaining": "rhm.learners.chaining",
    "chaining+": "rhm.learners.chaining_plus",
    "cnn": "rhm.learners.cnn",
    "kmeans": "rhm.learners.kmeans",
    "moments": "rhm.learners.moments",
    "fcn": "rhm.learners.shallow",
    "kernel": "rhm.learners.shallow",
    "lcn": "rhm.learners.lcn",
    "transformer": "rhm.learners.transformer",
    "diffusion": "rhm.learners.diffusion",
    "induce": "rhm.learners.induce",
}
_REGISTRY: dict[str, type] = {}


def register(cls):
    """Class decorator: add a Learner subclass to the registry under ``cls.name``."""
    from .base import Learner

    if not (isinstance(cls, type) and issubclass(cls, Learner)):
        raise TypeError("register expects a Learner subclass")
    _REGISTRY[cls.name] = cls
    return cls


def names() -> list[str]:
    return sorted(set(_MODULES) | set(_REGISTRY))


def get(name: str) -> type:
    """The learner class registered as `name`; ValueError listing the known names otherwise."""
    if name not in _REGISTRY and name in _MODULES:
        importlib.import_module(_MODULES[name])
    if name not in _REGISTRY:
        raise ValueError(f"unknown learner {name!r}; known learners: {', '.join(names())}")
    return _REGISTRY[name]


def available(name: str) -> bool:
    """True when learner `name` is registered and its module imports (False e.g. for the torch learners without
    torch): experiments leave optional comparisons out instead of failing."""
    try:
        get(name)
    except Exception:  # noqa: BLE001 -- not registered, or its module fails to import
        return False
    return True


def check_online(name: str) -> None:
    """ValueError unless learner `name` can train online on an rhm.data.RHMStream (has ``fit_stream``)."""
    if not hasattr(get(name), "fit_stream"):
        raise ValueError(f"learner {name!r} cannot train online (online=True needs a torch learner with "
                         "fit_stream: cnn, lcn, transformer, fcn)")


def __getattr__(name):  # rhm.learners.Learner without importing torch up front
    if name == "Learner":
        from .base import Learner

        return Learner
    raise AttributeError(f"module 'rhm.learners' has no attribute {name!r}")


__all__ = ["Learner", "check_online", "get", "names", "register"]

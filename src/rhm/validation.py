"""Parameter checks shared by the grammar, the learners and the boolean experiments.

Every check raises ValueError naming the parameter, its value and the rule it breaks ("width=0 must be >= 1"),
and returns the value converted to a plain Python type. Booleans are never accepted as numbers.
"""

from __future__ import annotations

import math
import numbers


def check_int(name: str, value, minimum: int | None = None, maximum: int | None = None, *,
              none_ok: bool = False) -> int | None:
    """`value` as an int in [minimum, maximum] (either bound optional); None passes when `none_ok`."""
    if value is None and none_ok:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name}={value!r} must be an integer")
    value = int(value)
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        rule = f">= {minimum}" if maximum is None else f"<= {maximum}" if minimum is None else \
            f"in [{minimum}, {maximum}]"
        raise ValueError(f"{name}={value!r} must be {rule}")
    return value


def check_float(name: str, value, minimum: float = 0.0, *, strict: bool = False,
                maximum: float | None = None) -> float:
    """`value` as a finite float >= minimum (> with `strict`) and < maximum when given."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(float(value)):
        raise ValueError(f"{name}={value!r} must be a finite real number")
    if (value <= minimum if strict else value < minimum) or (maximum is not None and value >= maximum):
        rule = (f"> {minimum}" if strict else f">= {minimum}") + (f" and < {maximum}" if maximum is not None else "")
        raise ValueError(f"{name}={value!r} must be {rule}")
    return float(value)


def check_choice(name: str, value, choices):
    """`value` if it is one of `choices`."""
    if value not in choices:
        raise ValueError(f"{name}={value!r} must be one of {choices}")
    return value


def check_bool(name: str, value) -> bool:
    """`value` if it is True or False (not 0/1, not None)."""
    if not isinstance(value, bool):
        raise ValueError(f"{name}={value!r} must be True or False")
    return value


class MissingDependencyError(ImportError, RuntimeError):
    """An optional dependency is not installed; the message ends with the command that installs it."""


def require(module: str, what: str, extra: str):
    """Import and return `module`, or raise MissingDependencyError saying that `what` needs it and how to get it
    (``pip install 'rhm[extra]'``)."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise MissingDependencyError(f"{what} needs {module}, which is not installed: pip install 'rhm[{extra}]' "
                                     f"(or pip install {module})") from None

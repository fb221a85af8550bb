"""The exception hierarchy: every error opdispatch raises on purpose is an `OpDispatchError`.

Messages name the op, the argument, the value given and what is allowed, e.g.
``conv2d: argument 'stride' got (0, 1); allowed: positive ints or a pair of positive ints``.
The user-input errors also derive from the matching built-in (`ValueError`,
`TypeError`) so code written against NumPy's conventions keeps working.
"""

from __future__ import annotations


class OpDispatchError(Exception):
    """Root of every error raised by opdispatch."""


class InvalidArgumentError(OpDispatchError, ValueError):
    """An op argument or attribute has a value the op does not allow."""


class ArgumentTypeError(InvalidArgumentError, TypeError):
    """An argument is of a type the function does not accept (None or a list where a dict is
    expected, an array where a tensor is expected)."""


class ShapeError(InvalidArgumentError):
    """Input shapes do not fit the op (rank, channel count, window larger than the input...)."""


class DTypeError(InvalidArgumentError, TypeError):
    """An input has a dtype the op does not accept, or inputs disagree on dtype."""


class TensorIndexError(InvalidArgumentError, IndexError):
    """An index is out of range (``t[5]`` on an axis of size 3, an entry of a gather's indices: the
    message names the axis, the index and the size) or is not a valid index (too many indices, a
    float, a boolean mask of the wrong shape). Also an `IndexError`, as NumPy raises, so Python's
    protocols and ``except IndexError`` work."""


class DeviceError(OpDispatchError):
    """A device is unknown, unavailable, or tensors live on incompatible devices."""


class DeviceMismatchError(DeviceError):
    """An op received tensors on two different devices and no placement policy allows a copy."""


class UnsupportedError(OpDispatchError):
    """The chosen device has no kernel for this (op, dtype, attributes) combination."""


class KernelError(OpDispatchError):
    """A backend kernel raised while running an op; the original error is chained."""


def arg_error(op: str, arg: str, value: object, allowed: str,
              cls: type[InvalidArgumentError] = InvalidArgumentError) -> InvalidArgumentError:
    """Build the standard message ``op: argument 'arg' got value; allowed: ...``."""
    return cls(f"{op}: argument {arg!r} got {value!r}; allowed: {allowed}")


class PlacementWarning(UserWarning):
    """An op ran on another device than asked, or data was copied, under a fallback policy."""


class GradientError(OpDispatchError):
    """A gradient cannot be computed: a source was never watched, the target does not depend on
    it, an op has no gradient rule, or a non-persistent tape was used twice."""


class NumericsError(OpDispatchError, FloatingPointError):
    """Under ``od.check_numerics()``: an op produced NaN or infinity that its inputs did not have; the
    message names the op, the device and the user's line (and the forward op, in a backward pass)."""

"""Argument checks shared by the losses: each failure says what was expected and given.

Two kinds of check, priced differently:

- the type, shape and dtype of each argument come from the tensor's metadata, free on any
  device: always checked;
- values (NaN or infinite logits, class indices out of range) need the data. On the host
  reading them costs nothing extra, so they raise a ValueError naming the problem. On an
  accelerator, reading a value into Python waits for every queued kernel (a host
  synchronisation), on every training step; there they become ``torch._assert_async``
  checks instead, which run on the device and fail at the next point that waits anyway
  (on CUDA as a "device-side assert", which ends the process's CUDA context: restart the
  kernel, then find the cause with the setting below). On a device without that kernel
  (PyTorch has one for CUDA; looked up once per device type) they are skipped: a NaN then
  shows as a NaN loss in the training history.

``KDLAB_CHECK_VALUES=1`` reads the values on every device, with the host's named errors:
for finding where a NaN comes from on a GPU, at the price of a wait per check.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

import torch
from torch import Tensor

from kdlab import runtime

_ASSERT_ASYNC = "aten::_assert_async.msg"
_DISPATCH_KEYS = {"meta": "Meta"}  # other device types: the type in capitals (CUDA, MPS, XPU)


@functools.cache
def _device_asserts(device_type: str) -> bool:
    """Whether ``torch._assert_async`` has a kernel for this device type (both are private
    PyTorch API: a version without them skips the checks instead of failing)."""
    has_kernel = getattr(torch._C, "_dispatch_has_kernel_for_dispatch_key", None)
    if not hasattr(torch, "_assert_async") or has_kernel is None:
        return False
    try:
        return bool(has_kernel(_ASSERT_ASYNC, _DISPATCH_KEYS.get(device_type, device_type.upper())))
    except RuntimeError:  # a device type without a dispatch key of that name
        return False


def _read_values(tensor: Tensor) -> bool:
    """Whether value checks read ``tensor``'s data now, in Python: on the host (no wait to
    pay), or everywhere under ``KDLAB_CHECK_VALUES=1``."""
    return tensor.is_cpu or runtime.check_values()


def _assert_on_device(tensor: Tensor, holds: Callable[[], Tensor], message: str) -> None:
    """``torch._assert_async(holds(), message)`` where the device has that kernel, nothing
    where it has not (see the module docstring): no host synchronisation either way."""
    if _device_asserts(tensor.device.type):
        torch._assert_async(holds(), message)


def _check_temperature(temperature: float) -> None:
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)):
        raise ValueError(f"temperature must be a number > 0, got {temperature!r}")
    if not math.isfinite(temperature) or temperature <= 0:
        raise ValueError(f"temperature must be a finite number > 0, got {temperature}")


def _check_logits(name: str, logits: Tensor) -> None:
    if not isinstance(logits, Tensor):
        raise ValueError(f"{name} must be a torch.Tensor, got {type(logits).__name__}")
    if not logits.is_floating_point():
        raise ValueError(f"{name} must be floating point logits, got dtype {logits.dtype}")
    if logits.dim() < 2:
        raise ValueError(
            f"{name} must have shape (batch, classes, ...), got shape {tuple(logits.shape)}"
        )
    if logits.shape[0] == 0:
        raise ValueError(f"{name} is an empty batch (shape {tuple(logits.shape)})")
    if _read_values(logits):
        if not torch.isfinite(logits).all():
            raise ValueError(f"{name} contains NaN or infinite values; check the model's output")
    else:
        _assert_on_device(
            logits,
            lambda: torch.isfinite(logits).all(),
            f"{name} contains NaN or infinite values; check the model's output",
        )


def _check_pair(student_logits: Tensor, teacher_logits: Tensor) -> None:
    _check_logits("student_logits", student_logits)
    _check_logits("teacher_logits", teacher_logits)
    if student_logits.shape != teacher_logits.shape:
        raise ValueError(
            "student_logits and teacher_logits must have the same shape, got "
            f"{tuple(student_logits.shape)} (student) and {tuple(teacher_logits.shape)} (teacher)"
        )


def _check_targets(targets: Tensor, logits: Tensor) -> None:
    if not isinstance(targets, Tensor) or targets.dtype not in (torch.int64, torch.int32):
        raise ValueError(
            "targets must be a tensor of integer class indices (torch.long), got "
            f"{getattr(targets, 'dtype', type(targets).__name__)}"
        )
    expected = (logits.shape[0],) + tuple(logits.shape[2:])
    if tuple(targets.shape) != expected:
        raise ValueError(
            f"targets must have shape {expected} to match logits {tuple(logits.shape)}, "
            f"got {tuple(targets.shape)}"
        )
    classes = logits.shape[1]
    if not targets.numel():
        return
    if _read_values(targets):
        if targets.min() < 0 or targets.max() >= classes:
            raise ValueError(
                f"targets must lie in [0, {classes - 1}] for {classes} classes, got values in "
                f"[{int(targets.min())}, {int(targets.max())}]"
            )
    else:
        _assert_on_device(
            targets,
            lambda: (targets.min() >= 0) & (targets.max() < classes),
            f"targets must lie in [0, {classes - 1}] for {classes} classes",
        )

"""Parameter-server numeric kernels over flat float32 buffers.

Aggregation of gradients (sum, mean), global-norm clipping and fused optimizer
steps (SGD, RMSProp, Adam with torch.optim semantics), all in place. The
compiled extension ``relaax_zmq._kernels`` (loops without the GIL) is used when
it loads, else the numpy reference ``relaax_zmq.kernels.reference``; see
``relaax_zmq.runtime.backend`` for forcing one.
"""

from __future__ import annotations

from relaax_zmq.runtime.backend import backend_name, load

_impl = load("relaax_zmq._kernels", "relaax_zmq.kernels.reference")

BACKEND = backend_name(_impl)
"""``"cython"`` or ``"python"``: the implementation in use."""

sum_into = _impl.sum_into
mean_into = _impl.mean_into
scaled_add = _impl.scaled_add
global_norm = _impl.global_norm
clip_by_global_norm = _impl.clip_by_global_norm
sgd_step = _impl.sgd_step
rmsprop_step = _impl.rmsprop_step
adam_step = _impl.adam_step

__all__ = [
    "BACKEND",
    "adam_step",
    "clip_by_global_norm",
    "global_norm",
    "mean_into",
    "rmsprop_step",
    "scaled_add",
    "sgd_step",
    "sum_into",
]

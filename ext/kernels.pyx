"""Parameter-server numeric kernels, compiled (``relaax_zmq._kernels``).

Aggregation (sum and mean of N gradients), global-norm clipping and fused
optimizer steps (SGD, RMSProp, Adam) over flat 1-D float32 buffers, in place.
Arguments are validated with the GIL held; the loops then run with the GIL
released, in chunks of ``CHUNK`` elements shared between OpenMP threads when
the extension is built with OpenMP and the buffers are large. Element-wise
arithmetic is float32 in the order torch uses, so results match
``torch.optim`` to rounding; reductions accumulate in float64 per chunk and
add the chunks in order, so they do not depend on the thread count.

``relaax_zmq.kernels.reference`` is the numpy ground truth with the same API
and the same error messages.
"""

from cpython.mem cimport PyMem_Free, PyMem_Malloc
from cython.parallel cimport prange
from libc.math cimport isfinite, sqrt, sqrtf
from libc.string cimport memset

cimport numpy as cnp

from relaax_zmq.kernels.checks import (
    INF,
    adam_hyper,
    check_array,
    optimizer_buffers,
    overlap_error,
    real,
    rmsprop_hyper,
    sequence,
    sgd_hyper,
)

cnp.import_array()

cdef enum:
    CHUNK = 65536  # elements per work item of a parallel loop
    BLOCK = 4096  # elements summed in a stack block (16 KiB, stays in L1)
    PARALLEL_MIN = 262144  # below this many elements one thread is faster

# --------------------------------------------------------------- validation
# The checks and their messages live in ``relaax_zmq.kernels.checks``, shared with
# the reference; only the pointer extraction and the overlap test need C.


cdef float* _data(
    object a, str name, Py_ssize_t index, Py_ssize_t size, bint writeable
) except NULL:
    """Pointer to the elements of ``a`` once it is a fit 1-D float32 buffer.

    ``size`` < 0 accepts any length. ``name`` and ``index`` label errors.
    """
    check_array(a, name, index, size, writeable)
    return <float*> cnp.PyArray_DATA(<cnp.ndarray> a)


cdef int _disjoint(
    const float* a, str a_name, const float* b, str b_name, Py_ssize_t b_index, Py_ssize_t n
) except -1:
    """Refuse two buffers of ``n`` elements whose memory overlaps."""
    if n > 0 and a < b + n and b < a + n:
        raise overlap_error(a_name, b_name, b_index)
    return 0


cdef Py_ssize_t _length(object a, str name) except -1:
    """Number of elements of a fit buffer ``a`` (validates it)."""
    return check_array(a, name)


# ------------------------------------------------------------- parallel loop

ctypedef void (*range_fn)(void* args, Py_ssize_t lo, Py_ssize_t hi) noexcept nogil


cdef void _parallel(range_fn fn, void* args, Py_ssize_t n) noexcept nogil:
    """Run ``fn(args, lo, hi)`` over [0, n) in chunks, on threads when large."""
    cdef Py_ssize_t chunks = (n + CHUNK - 1) // CHUNK
    cdef Py_ssize_t c
    for c in prange(chunks, schedule="static", use_threads_if=n >= PARALLEL_MIN):
        fn(args, c * CHUNK, min(c * CHUNK + CHUNK, n))


# -------------------------------------------------------------- aggregation

ctypedef struct SumArgs:
    float* out
    float** grads
    Py_ssize_t count
    float divisor  # 1 for a sum, N for a mean


cdef void _add_group(
    float* block, const float* acc, float** grads, Py_ssize_t count, Py_ssize_t start,
    Py_ssize_t m,
) noexcept nogil:
    """block[:m] = acc[:m] + grads[0][start:] + ... (up to 4 gradients, in order), one pass."""
    cdef const float* g[4]
    cdef Py_ssize_t j
    for j in range(4):
        g[j] = acc  # unused slots: never read
        if j < count:
            g[j] = grads[j] + start
    cdef const float* g0 = g[0]
    cdef const float* g1 = g[1]
    cdef const float* g2 = g[2]
    cdef const float* g3 = g[3]
    if count >= 4:
        for j in range(m):
            block[j] = (((acc[j] + g0[j]) + g1[j]) + g2[j]) + g3[j]
    elif count == 3:
        for j in range(m):
            block[j] = ((acc[j] + g0[j]) + g1[j]) + g2[j]
    elif count == 2:
        for j in range(m):
            block[j] = (acc[j] + g0[j]) + g1[j]
    elif count == 1:
        for j in range(m):
            block[j] = acc[j] + g0[j]
    else:
        for j in range(m):
            block[j] = acc[j]


cdef void _sum_range(void* p, Py_ssize_t lo, Py_ssize_t hi) noexcept nogil:
    cdef SumArgs* a = <SumArgs*> p
    cdef float block[BLOCK]
    cdef float* dst
    cdef float divisor = a.divisor
    cdef Py_ssize_t start = lo, j, k, m, first = min(<Py_ssize_t> 4, a.count - 1)
    while start < hi:
        m = min(<Py_ssize_t> BLOCK, hi - start)
        _add_group(block, a.grads[0] + start, a.grads + 1, first, start, m)
        for k in range(1 + first, a.count, 4):
            _add_group(block, block, a.grads + k, min(<Py_ssize_t> 4, a.count - k), start, m)
        dst = a.out + start
        if divisor == 1:  # a division per element would cost a third of the time
            for j in range(m):
                dst[j] = block[j]
        else:
            for j in range(m):
                dst[j] = block[j] / divisor
        start += m


cdef int _aggregate(object out, object grads, bint mean) except -1:
    """out[:] = sum (or mean) of ``grads``, validated, with the GIL released."""
    cdef Py_ssize_t n = _length(out, "out")
    cdef tuple arrays = sequence(grads, "grads")
    cdef Py_ssize_t k, count = len(arrays)
    cdef SumArgs args
    if count == 0 and mean:
        raise ValueError("grads: expected at least one array, got none")
    args.out = _data(out, "out", -1, n, True)
    if count == 0:
        with nogil:
            memset(args.out, 0, n * sizeof(float))
        return 0
    args.grads = <float**> PyMem_Malloc(count * sizeof(float*))
    if args.grads == NULL:
        raise MemoryError()
    try:
        for k in range(count):
            args.grads[k] = _data(arrays[k], "grads", k, n, False)
            _disjoint(args.out, "out", args.grads[k], "grads", k, n)
        args.count = count
        args.divisor = count if mean else 1
        with nogil:
            _parallel(_sum_range, &args, n)
    finally:
        PyMem_Free(args.grads)
    return 0


def sum_into(out, grads):
    """``relaax_zmq.kernels.reference.sum_into``, compiled: same contract and errors."""
    _aggregate(out, grads, False)


def mean_into(out, grads):
    """``relaax_zmq.kernels.reference.mean_into``, compiled: same contract and errors."""
    _aggregate(out, grads, True)


# ------------------------------------------------------ scaling and norms

ctypedef struct AxpyArgs:
    float* out
    const float* x  # NULL: scale ``out`` by ``alpha``
    float alpha


cdef void _axpy_range(void* p, Py_ssize_t lo, Py_ssize_t hi) noexcept nogil:
    cdef AxpyArgs* a = <AxpyArgs*> p
    cdef float* out = a.out
    cdef const float* x = a.x
    cdef float alpha = a.alpha
    cdef Py_ssize_t i
    if x == NULL:
        for i in range(lo, hi):
            out[i] = out[i] * alpha
    else:
        for i in range(lo, hi):
            out[i] = out[i] + alpha * x[i]


cdef void _axpy(float* out, const float* x, float alpha, Py_ssize_t n) noexcept nogil:
    cdef AxpyArgs args
    args.out = out
    args.x = x
    args.alpha = alpha
    _parallel(_axpy_range, &args, n)


def scaled_add(out, x, alpha):
    """``relaax_zmq.kernels.reference.scaled_add``, compiled: same contract and errors."""
    cdef Py_ssize_t n = _length(out, "out")
    cdef float* o = _data(out, "out", -1, n, True)
    cdef float* xp = _data(x, "x", -1, n, False)
    cdef float a = <float> real(alpha, "alpha", -INF, INF)
    _disjoint(o, "out", xp, "x", -1, n)
    with nogil:
        _axpy(o, xp, a, n)


ctypedef struct SquaresArgs:
    const float* x
    double* partial  # one sum per chunk


cdef void _squares_range(void* p, Py_ssize_t lo, Py_ssize_t hi) noexcept nogil:
    cdef SquaresArgs* a = <SquaresArgs*> p
    cdef const float* x = a.x
    cdef double s0 = 0, s1 = 0, s2 = 0, s3 = 0
    cdef Py_ssize_t i = lo
    while i + 4 <= hi:  # four accumulators break the add latency chain
        s0 += <double> x[i] * x[i]
        s1 += <double> x[i + 1] * x[i + 1]
        s2 += <double> x[i + 2] * x[i + 2]
        s3 += <double> x[i + 3] * x[i + 3]
        i += 4
    while i < hi:
        s0 += <double> x[i] * x[i]
        i += 1
    a.partial[lo // CHUNK] = (s0 + s1) + (s2 + s3)


cdef double _sum_squares(const float* x, Py_ssize_t n, double* partial) noexcept nogil:
    cdef SquaresArgs args
    cdef double total = 0
    cdef Py_ssize_t c
    args.x = x
    args.partial = partial
    _parallel(_squares_range, &args, n)
    for c in range((n + CHUNK - 1) // CHUNK):
        total += partial[c]
    return total


cdef double _global_norm(
    tuple arrays, float** data, Py_ssize_t* sizes, bint writeable
) except -1:
    """Validate ``arrays`` into ``data``/``sizes`` and return their global norm."""
    cdef Py_ssize_t k, count = len(arrays), chunks = 1
    cdef double total = 0
    cdef double* partial
    for k in range(count):
        data[k] = _data(arrays[k], "buffers", k, -1, writeable)
        sizes[k] = cnp.PyArray_DIM(<cnp.ndarray> arrays[k], 0)
        chunks = max(chunks, (sizes[k] + CHUNK - 1) // CHUNK)
    partial = <double*> PyMem_Malloc(chunks * sizeof(double))
    if partial == NULL:
        raise MemoryError()
    with nogil:
        for k in range(count):
            total += _sum_squares(data[k], sizes[k], partial)
    PyMem_Free(partial)
    return sqrt(total)


cdef double _norm_and_clip(object buffers, double max_norm, bint clip) except -1:
    """Global norm of ``buffers``; scale them to ``max_norm`` when ``clip`` and above it."""
    cdef tuple arrays = sequence(buffers, "buffers")
    cdef Py_ssize_t k, count = len(arrays)
    cdef double norm
    cdef float scale
    cdef float** data = <float**> PyMem_Malloc((count + 1) * sizeof(float*))
    cdef Py_ssize_t* sizes = <Py_ssize_t*> PyMem_Malloc((count + 1) * sizeof(Py_ssize_t))
    try:
        if data == NULL or sizes == NULL:
            raise MemoryError()
        norm = _global_norm(arrays, data, sizes, clip)
        if not (clip and isfinite(norm) and norm > max_norm):
            return norm
        scale = <float> (max_norm / norm)
        with nogil:
            for k in range(count):
                _axpy(data[k], NULL, scale, sizes[k])
        return norm
    finally:
        PyMem_Free(data)
        PyMem_Free(sizes)


def global_norm(buffers):
    """``relaax_zmq.kernels.reference.global_norm``, compiled: same contract and errors."""
    return _norm_and_clip(buffers, 0.0, False)


def clip_by_global_norm(buffers, max_norm):
    """``relaax_zmq.kernels.reference.clip_by_global_norm``, compiled: same contract and errors."""
    return _norm_and_clip(buffers, real(max_norm, "max_norm", 0, INF), True)


# --------------------------------------------------------------- optimizers


cdef Py_ssize_t _check_optimizer(
    object param, object grad, tuple state_names, tuple states, float** ptrs
) except -1:
    """Validate ``param``, ``grad`` and the state buffers into ``ptrs``, all disjoint.

    ``ptrs`` receives param, grad then each state buffer.
    """
    cdef Py_ssize_t n, i, j
    n, names, arrays = optimizer_buffers(param, grad, state_names, states)
    for i in range(len(arrays)):
        ptrs[i] = _data(arrays[i], names[i], -1, n, i != 1)
        for j in range(i):
            _disjoint(ptrs[i], names[i], ptrs[j], names[j], -1, n)
    return n


ctypedef struct SgdArgs:
    float* param
    const float* grad
    float* buf
    float lr, momentum, damp_keep, weight_decay  # damp_keep = 1 - dampening
    bint nesterov, first_step


cdef void _sgd_range(void* p, Py_ssize_t lo, Py_ssize_t hi) noexcept nogil:
    cdef SgdArgs* a = <SgdArgs*> p
    cdef float* param = a.param
    cdef const float* grad = a.grad
    cdef float* buf = a.buf
    cdef float neg_lr = -a.lr, mu = a.momentum, keep = a.damp_keep, wd = a.weight_decay
    cdef bint nesterov = a.nesterov, first = a.first_step
    cdef float g, b
    cdef Py_ssize_t i
    for i in range(lo, hi):
        g = grad[i]
        if wd != 0:
            g = g + wd * param[i]
        if mu != 0:
            b = g if first else buf[i] * mu + keep * g
            buf[i] = b
            g = g + mu * b if nesterov else b
        param[i] = param[i] + neg_lr * g


def sgd_step(
    param, grad, momentum_buf, lr, momentum=0.0, dampening=0.0, nesterov=False,
    weight_decay=0.0, first_step=False,
):
    """``relaax_zmq.kernels.reference.sgd_step``, compiled: same contract and errors."""
    cdef SgdArgs args
    cdef float* ptrs[3]
    args.lr, args.momentum, damp, args.weight_decay = sgd_hyper(
        lr, momentum, dampening, weight_decay, nesterov
    )
    args.damp_keep = 1 - damp
    args.nesterov = bool(nesterov)
    args.first_step = bool(first_step)
    if args.momentum == 0:
        states = () if momentum_buf is None else (momentum_buf,)
        n = _check_optimizer(param, grad, ("momentum_buf",), states, ptrs)
    else:
        n = _check_optimizer(param, grad, ("momentum_buf",), (momentum_buf,), ptrs)
    args.param, args.grad = ptrs[0], ptrs[1]
    args.buf = ptrs[2] if args.momentum != 0 else NULL
    with nogil:
        _parallel(_sgd_range, &args, n)


ctypedef struct RmsArgs:
    float* param
    const float* grad
    float* square_avg
    float lr, decay, decay_weight, eps  # decay_weight = 1 - decay
    bint eps_inside_sqrt


cdef void _rmsprop_range(void* p, Py_ssize_t lo, Py_ssize_t hi) noexcept nogil:
    cdef RmsArgs* a = <RmsArgs*> p
    cdef float* param = a.param
    cdef const float* grad = a.grad
    cdef float* sq = a.square_avg
    cdef float neg_lr = -a.lr, decay = a.decay, keep = a.decay_weight
    cdef float eps = a.eps
    cdef bint inside = a.eps_inside_sqrt
    cdef float g, v
    cdef Py_ssize_t i
    for i in range(lo, hi):
        g = grad[i]
        v = sq[i] * decay
        v = v + keep * g * g
        sq[i] = v
        if inside:
            param[i] = param[i] + neg_lr * g / sqrtf(v + eps)
        else:
            param[i] = param[i] + neg_lr * g / (sqrtf(v) + eps)


def rmsprop_step(param, grad, square_avg, lr, decay=0.99, eps=1e-8, eps_inside_sqrt=True):
    """``relaax_zmq.kernels.reference.rmsprop_step``, compiled: same contract and errors."""
    cdef RmsArgs args
    cdef float* ptrs[3]
    args.lr, rho, args.eps = rmsprop_hyper(lr, decay, eps)
    args.decay = rho
    args.decay_weight = 1 - rho
    args.eps_inside_sqrt = bool(eps_inside_sqrt)
    n = _check_optimizer(param, grad, ("square_avg",), (square_avg,), ptrs)
    args.param, args.grad, args.square_avg = ptrs[0], ptrs[1], ptrs[2]
    with nogil:
        _parallel(_rmsprop_range, &args, n)


ctypedef struct AdamArgs:
    float* param
    const float* grad
    float* exp_avg
    float* exp_avg_sq
    float beta1_weight, beta2, beta2_weight, eps, weight_decay  # weights: 1 - beta
    float neg_step_size, bias2_sqrt


cdef void _adam_range(void* p, Py_ssize_t lo, Py_ssize_t hi) noexcept nogil:
    cdef AdamArgs* a = <AdamArgs*> p
    cdef float* param = a.param
    cdef const float* grad = a.grad
    cdef float* m1 = a.exp_avg
    cdef float* m2 = a.exp_avg_sq
    cdef float w1 = a.beta1_weight, beta2 = a.beta2, w2 = a.beta2_weight
    cdef float eps = a.eps, wd = a.weight_decay
    cdef float neg_step = a.neg_step_size, bias2_sqrt = a.bias2_sqrt
    cdef bint small = w1 < 0.5
    cdef float g, m, v
    cdef Py_ssize_t i
    for i in range(lo, hi):
        g = grad[i]
        if wd != 0:
            g = g + wd * param[i]
        m = m1[i]
        m = m + w1 * (g - m) if small else g - (g - m) * (1 - w1)  # torch.lerp
        m1[i] = m
        v = m2[i] * beta2
        v = v + w2 * g * g
        m2[i] = v
        param[i] = param[i] + neg_step * m / (sqrtf(v) / bias2_sqrt + eps)


def adam_step(
    param, grad, exp_avg, exp_avg_sq, step, lr, beta1=0.9, beta2=0.999, eps=1e-8,
    weight_decay=0.0,
):
    """``relaax_zmq.kernels.reference.adam_step``, compiled: same contract and errors."""
    cdef AdamArgs args
    cdef float* ptrs[4]
    t, rate, b1, b2, args.eps, args.weight_decay = adam_hyper(
        step, lr, beta1, beta2, eps, weight_decay
    )
    n = _check_optimizer(param, grad, ("exp_avg", "exp_avg_sq"), (exp_avg, exp_avg_sq), ptrs)
    args.param, args.grad, args.exp_avg, args.exp_avg_sq = ptrs[0], ptrs[1], ptrs[2], ptrs[3]
    args.beta1_weight = 1 - b1
    args.beta2 = b2
    args.beta2_weight = 1 - b2
    args.neg_step_size = -(rate / (1 - b1**t))
    args.bias2_sqrt = (1 - b2**t) ** 0.5
    with nogil:
        _parallel(_adam_range, &args, n)

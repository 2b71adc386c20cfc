# cython: language_level=3
"""Compiled RLX codec: the same API as ``relaax_zmq.protocol.reference``.

The fast path packs and parses headers and descriptors in C and builds numpy
views on the frames with the C API. Whenever the fast path meets anything it
does not accept, the reference codec handles the message instead: it raises
the exact ``ProtocolError`` (one place writes every error text, so both
backends name the same field), or, for exotic but valid input (a strided
frame, a list instead of an array), produces the result. ``stats()`` counts
how often that happened, so tests can prove the fast path carries valid
traffic.
"""

import sys

import numpy as np

cimport numpy as cnp
from cpython.buffer cimport PyBUF_SIMPLE, PyBuffer_Release, PyObject_GetBuffer
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_CheckExact, PyBytes_FromStringAndSize
from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t
from libc.string cimport memcmp, memcpy, memset

from relaax_zmq.errors import ProtocolError
from relaax_zmq.protocol import reference
from relaax_zmq.protocol.constants import (
    DTYPE_CODES,
    KNOWN_EPISODE_FLAGS,
    MAGIC,
    NUMPY_DTYPES,
    SUPPORTED_VERSIONS,
    Flag,
    Role,
)
from relaax_zmq.protocol.limits import DEFAULT_LIMITS
from relaax_zmq.protocol.message import Message
from relaax_zmq.protocol.schema import ROLE_RULES, TYPE_RULES, Shape

cnp.import_array()

if sys.byteorder != "little":
    raise ImportError("the compiled RLX codec supports little-endian hosts only")

DEF HEADER_SIZE = 32
DEF DESCRIPTOR_SIZE = 40
DEF MAX_NDIM = 8
DEF TABLE_SLOTS = 16   # message types and roles are below 16
DEF TYPENUM_SLOTS = 64

# ---- the schema as C tables, filled once from relaax_zmq.protocol.schema ----
cdef uint16_t type_flags[TABLE_SLOTS]
cdef uint32_t type_roles[TABLE_SLOTS]
cdef uint32_t type_required[TABLE_SLOTS]
cdef uint32_t type_min_sessions[TABLE_SLOTS]
cdef bint type_known[TABLE_SLOTS]
cdef uint32_t role_dtypes[TABLE_SLOTS]
cdef int role_shape[TABLE_SLOTS]
cdef int dtype_typenum[TABLE_SLOTS]
cdef Py_ssize_t dtype_size[TABLE_SLOTS]
cdef uint8_t code_of_typenum[TYPENUM_SLOTS]
cdef bint version_ok[256]
cdef uint16_t broadcast_episode_flags = int(Flag.TERMINAL | Flag.TRUNCATED)
cdef uint8_t known_episode_flags = KNOWN_EPISODE_FLAGS
cdef int role_episode_flags = Role.EPISODE_FLAGS
cdef int SHAPE_SESSION_VECTOR = Shape.SESSION_VECTOR
cdef int SHAPE_PER_SESSION = Shape.PER_SESSION
cdef int SHAPE_VECTOR = Shape.VECTOR
cdef const char* magic = b"RLXP"

cdef dict _stats = {"encode_fallbacks": 0, "decode_fallbacks": 0}


cdef void _build_tables() except *:
    cdef int i
    memset(type_known, 0, sizeof(type_known))
    memset(version_ok, 0, sizeof(version_ok))
    memset(code_of_typenum, 0, sizeof(code_of_typenum))
    for version in SUPPORTED_VERSIONS:
        version_ok[version] = True
    for mtype, rule in TYPE_RULES.items():
        type_known[mtype] = True
        type_flags[mtype] = int(rule.flags)
        type_roles[mtype] = _mask(rule.roles)
        type_required[mtype] = _mask(rule.required)
        type_min_sessions[mtype] = rule.min_sessions
    for role, role_rule in ROLE_RULES.items():
        role_dtypes[role] = _mask(role_rule.dtypes)
        role_shape[role] = int(role_rule.shape)
    for code, dtype in NUMPY_DTYPES.items():
        dtype_typenum[code] = dtype.num
        dtype_size[code] = dtype.itemsize
    for name in ("bool_", "byte", "ubyte", "short", "ushort", "intc", "uintc", "int_", "uint",
                 "long", "ulong", "longlong", "ulonglong", "half", "single", "double"):
        if hasattr(np, name):
            dt = np.dtype(getattr(np, name))
            key = (dt.kind, dt.itemsize)
            if key in DTYPE_CODES and dt.num < TYPENUM_SLOTS:
                code_of_typenum[dt.num] = DTYPE_CODES[key]


cdef uint32_t _mask(values):
    cdef uint32_t mask = 0
    for value in values:
        mask |= (<uint32_t>1) << int(value)
    return mask


_build_tables()


cdef class _CachedLimits:
    cdef object limits
    cdef uint64_t max_elements
    cdef uint32_t max_tensors
    cdef uint32_t max_sessions


cdef _CachedLimits _cached = _CachedLimits()


cdef _CachedLimits _limits(object limits):
    global _cached
    if limits is not _cached.limits:
        cached = _CachedLimits()
        cached.limits = limits
        cached.max_elements = limits.max_elements
        cached.max_tensors = limits.max_tensors
        cached.max_sessions = limits.max_sessions
        _cached = cached
    return _cached


def stats():
    """How many messages the fast path handed to the reference codec."""
    return dict(_stats)


# ---------------------------------------------------------------- decoding --

cdef inline bint _shape_ok(int rule, int ndim, const uint32_t* dims, uint32_t n) noexcept:
    if rule == SHAPE_SESSION_VECTOR:
        return ndim == 1 and dims[0] == n
    if rule == SHAPE_PER_SESSION:
        return ndim >= 1 and dims[0] == n
    if rule == SHAPE_VECTOR:
        return ndim == 1
    return ndim == 0


cdef inline bint _elements(int ndim, const uint32_t* dims, uint64_t limit, uint64_t* out) noexcept:
    """Element count of ``dims`` into ``out``; False when it exceeds ``limit``, or when the
    product of the non-zero dimensions does (an empty tensor's other dimensions are bounded)."""
    cdef uint64_t total = 1
    cdef bint empty = False
    cdef int d
    for d in range(ndim):
        if dims[d] == 0:
            empty = True
            continue
        total *= dims[d]
        if total > limit:
            return False
    out[0] = 0 if empty else total
    return True


cdef object _view(object frame, int code, int ndim, const uint32_t* dims, uint64_t elements):
    """A read-only numpy view on ``frame``, or None when its size is wrong."""
    cdef Py_buffer view
    cdef cnp.npy_intp shape[MAX_NDIM]
    cdef char* data
    cdef object base
    cdef int d
    if PyBytes_CheckExact(frame):
        base = frame
        data = PyBytes_AS_STRING(frame)
        if len(<bytes>frame) != <Py_ssize_t>(elements * dtype_size[code]):
            return None
    else:
        try:
            base = memoryview(frame)
            PyObject_GetBuffer(base, &view, PyBUF_SIMPLE)
        except Exception:
            return None
        data = <char*>view.buf
        try:
            if view.len != <Py_ssize_t>(elements * dtype_size[code]):
                return None
        finally:
            PyBuffer_Release(&view)
    for d in range(ndim):
        shape[d] = dims[d]
    arr = cnp.PyArray_SimpleNewFromData(ndim, shape, dtype_typenum[code], data)
    cnp.set_array_base(arr, base)
    cnp.PyArray_CLEARFLAGS(arr, cnp.NPY_ARRAY_WRITEABLE)
    return arr


cdef object _decode_fast(object frames, _CachedLimits lim):
    """The decoded message, or None to hand the frames to the reference codec."""
    cdef Py_buffer hbuf, tbuf
    cdef uint8_t head[HEADER_SIZE]
    cdef uint8_t version, mtype
    cdef uint16_t flags, count, reserved16
    cdef uint32_t n, ndim, reserved32, i, d, role, code
    cdef uint32_t dims[MAX_NDIM]
    cdef uint64_t seq, sid, elements
    cdef uint32_t seen = 0
    cdef Py_ssize_t nframes = len(frames)
    cdef const uint8_t* entry
    cdef const uint8_t* values
    cdef bint ok
    if nframes < 1:
        return None
    try:
        PyObject_GetBuffer(frames[0], &hbuf, PyBUF_SIMPLE)
    except Exception:  # not a contiguous buffer: the reference names the problem
        return None
    ok = hbuf.len == HEADER_SIZE
    if ok:
        memcpy(head, hbuf.buf, HEADER_SIZE)
    PyBuffer_Release(&hbuf)
    if not ok or memcmp(head, magic, 4) != 0:
        return None
    version = head[4]
    mtype = head[5]
    memcpy(&flags, head + 6, 2)
    memcpy(&seq, head + 8, 8)
    memcpy(&sid, head + 16, 8)
    memcpy(&n, head + 24, 4)
    memcpy(&count, head + 28, 2)
    memcpy(&reserved16, head + 30, 2)
    if not version_ok[version] or mtype >= TABLE_SLOTS or not type_known[mtype]:
        return None
    if flags & ~type_flags[mtype] or reserved16 != 0:
        return None
    if n < type_min_sessions[mtype] or n > lim.max_sessions or count > lim.max_tensors:
        return None
    if nframes != 1 + (count > 0) + count:
        return None
    tensors = {}
    if count:
        try:
            PyObject_GetBuffer(frames[1], &tbuf, PyBUF_SIMPLE)
        except Exception:
            return None
        try:
            if tbuf.len != DESCRIPTOR_SIZE * count:
                return None
            for i in range(count):
                entry = <const uint8_t*>tbuf.buf + DESCRIPTOR_SIZE * i
                role = entry[0] | (entry[1] << 8)
                code = entry[2]
                ndim = entry[3]
                memcpy(&reserved32, entry + 4, 4)
                memcpy(dims, entry + 8, 4 * MAX_NDIM)
                if role >= TABLE_SLOTS or not (type_roles[mtype] >> role) & 1 or (seen >> role) & 1:
                    return None
                seen |= (<uint32_t>1) << role
                if code >= TABLE_SLOTS or not (role_dtypes[role] >> code) & 1:
                    return None
                if ndim > MAX_NDIM or reserved32 != 0:
                    return None
                for d in range(ndim, MAX_NDIM):
                    if dims[d] != 0:
                        return None
                if not _elements(ndim, dims, lim.max_elements, &elements):
                    return None
                if not _shape_ok(role_shape[role], ndim, dims, n):
                    return None
                arr = _view(frames[2 + i], code, ndim, dims, elements)
                if arr is None:
                    return None
                tensors[role] = arr
        finally:
            PyBuffer_Release(&tbuf)
    if type_required[mtype] & ~seen:
        return None
    if (seen >> role_episode_flags) & 1:
        if flags & broadcast_episode_flags:
            return None
        values = <const uint8_t*>cnp.PyArray_DATA(tensors[role_episode_flags])
        for i in range(n):
            if values[i] & ~known_episode_flags:
                return None
    message = Message.__new__(Message)
    message.type = mtype
    message.flags = flags
    message.sequence = seq
    message.session_id = sid
    message.session_count = n
    message.tensors = tensors
    message.version = version
    return message


def decode(frames, limits=DEFAULT_LIMITS):
    """``relaax_zmq.protocol.reference.decode``, compiled: same contract and errors."""
    message = _decode_fast(frames, _limits(limits))
    if message is None:
        _stats["decode_fallbacks"] += 1
        return reference.decode(frames, limits)
    return message


# ---------------------------------------------------------------- encoding --

cdef inline void _put_header(char* out, uint8_t version, uint8_t mtype, uint16_t flags,
                             uint64_t seq, uint64_t sid, uint32_t n, uint16_t count) noexcept:
    memcpy(out, magic, 4)
    out[4] = <char>version
    out[5] = <char>mtype
    memcpy(out + 6, &flags, 2)
    memcpy(out + 8, &seq, 8)
    memcpy(out + 16, &sid, 8)
    memcpy(out + 24, &n, 4)
    memcpy(out + 28, &count, 2)
    memset(out + 30, 0, 2)


cdef object _encode_fast(object message, _CachedLimits lim):
    """The frames of ``message``, or None to hand it to the reference codec."""
    cdef uint64_t seq, sid, elements
    cdef uint32_t n, role, code, i, j, d, ndim
    cdef uint32_t seen = 0
    cdef uint32_t roles[TABLE_SLOTS]
    cdef uint32_t dims[MAX_NDIM]
    cdef uint16_t flags
    cdef uint8_t version, mtype
    cdef Py_ssize_t count
    cdef cnp.npy_intp* shape
    cdef cnp.ndarray arr
    cdef char* entry
    cdef const uint8_t* values
    try:
        version = message.version
        mtype = message.type
        flags = message.flags
        seq = message.sequence
        sid = message.session_id
        n = message.session_count
    except (OverflowError, TypeError, AttributeError):
        return None
    tensors = message.tensors
    if type(tensors) is not dict:
        return None
    count = len(<dict>tensors)
    if not version_ok[version] or mtype >= TABLE_SLOTS or not type_known[mtype]:
        return None
    if flags & ~type_flags[mtype]:
        return None
    if n < type_min_sessions[mtype] or n > lim.max_sessions or count > lim.max_tensors:
        return None
    header = PyBytes_FromStringAndSize(NULL, HEADER_SIZE)
    _put_header(PyBytes_AS_STRING(header), version, mtype, flags, seq, sid, n, <uint16_t>count)
    if count == 0:
        return [header] if type_required[mtype] == 0 else None
    i = 0
    for key in <dict>tensors:
        if not isinstance(key, int) or key < 0 or key >= TABLE_SLOTS:
            return None
        role = key
        if (seen >> role) & 1:
            return None
        seen |= (<uint32_t>1) << role
        j = i
        while j > 0 and roles[j - 1] > role:  # insertion sort: ascending role order
            roles[j] = roles[j - 1]
            j -= 1
        roles[j] = role
        i += 1
    if type_required[mtype] & ~seen or seen & ~type_roles[mtype]:
        return None
    table = PyBytes_FromStringAndSize(NULL, DESCRIPTOR_SIZE * count)
    memset(PyBytes_AS_STRING(table), 0, DESCRIPTOR_SIZE * count)
    frames = [header, table]
    for i in range(count):
        role = roles[i]
        value = (<dict>tensors)[role]
        if not cnp.PyArray_CheckExact(value):
            return None
        arr = <cnp.ndarray>value
        if not cnp.PyArray_IS_C_CONTIGUOUS(arr) or not cnp.PyArray_ISNOTSWAPPED(arr):
            return None
        if cnp.PyArray_TYPE(arr) >= TYPENUM_SLOTS:
            return None
        code = code_of_typenum[cnp.PyArray_TYPE(arr)]
        if code == 0 or not (role_dtypes[role] >> code) & 1:
            return None
        ndim = cnp.PyArray_NDIM(arr)
        if ndim > MAX_NDIM:
            return None
        shape = cnp.PyArray_DIMS(arr)
        for d in range(ndim):
            if shape[d] > 0xFFFFFFFF:
                return None
            dims[d] = <uint32_t>shape[d]
        if not _elements(ndim, dims, lim.max_elements, &elements):
            return None
        if not _shape_ok(role_shape[role], ndim, dims, n):
            return None
        entry = PyBytes_AS_STRING(table) + DESCRIPTOR_SIZE * i
        entry[0] = <char>(role & 0xFF)
        entry[1] = <char>(role >> 8)
        entry[2] = <char>code
        entry[3] = <char>ndim
        memcpy(entry + 8, dims, 4 * ndim)
        frames.append(arr)
    if (seen >> role_episode_flags) & 1:
        if flags & broadcast_episode_flags:
            return None
        values = <const uint8_t*>cnp.PyArray_DATA(<cnp.ndarray>tensors[role_episode_flags])
        for i in range(n):
            if values[i] & ~known_episode_flags:
                return None
    return frames


def encode(message, limits=DEFAULT_LIMITS):
    """``relaax_zmq.protocol.reference.encode``, compiled: same contract and errors."""
    frames = _encode_fast(message, _limits(limits))
    if frames is None:
        _stats["encode_fallbacks"] += 1
        return reference.encode(message, limits)
    return frames

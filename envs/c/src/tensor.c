/* Tensor helpers of the public API: construction, element count, reading one element. */
#include <math.h>
#include <string.h>

#include "rlx.h"

rlx_tensor rlx_tensor_of(int dtype, const void *data, int ndim, const uint32_t *shape) {
    rlx_tensor t;
    uint64_t bytes;
    int d;
    memset(&t, 0, sizeof t);
    if (ndim < 0) ndim = 0;
    if (ndim > RLX_MAX_NDIM) ndim = RLX_MAX_NDIM;
    t.dtype = (uint8_t)(dtype >= 0 && dtype <= 255 ? dtype : 0);
    t.ndim = (uint8_t)ndim;
    for (d = 0; d < ndim; d++) t.shape[d] = shape[d];
    t.data = data;
    bytes = rlx_tensor_elements(&t);
    bytes = bytes > SIZE_MAX / 8 ? SIZE_MAX : bytes * rlx_dtype_size(dtype);
    t.nbytes = (size_t)bytes;
    return t;
}

uint64_t rlx_tensor_elements(const rlx_tensor *t) {
    uint64_t count = 1;
    unsigned d, ndim = t->ndim > RLX_MAX_NDIM ? RLX_MAX_NDIM : t->ndim;
    for (d = 0; d < ndim; d++) {
        if (t->shape[d] == 0) return 0;
        if (count > UINT64_MAX / t->shape[d]) count = UINT64_MAX;
        else count *= t->shape[d];
    }
    return count;
}

/* The bytes of element index, or NULL past the end of the tensor or its data. */
static const unsigned char *element(const rlx_tensor *t, uint64_t index, size_t size) {
    if (size == 0 || t->data == NULL || index >= rlx_tensor_elements(t)) return NULL;
    if (index >= t->nbytes / size) return NULL;
    return (const unsigned char *)t->data + (size_t)index * size;
}

static double half_to_double(uint16_t h) {
    int exponent = (h >> 10) & 0x1F;
    double mantissa = h & 0x3FF, value;
    if (exponent == 0) value = ldexp(mantissa, -24);
    else if (exponent == 31) value = mantissa == 0 ? HUGE_VAL : NAN;
    else value = ldexp(mantissa + 1024.0, exponent - 25);
    return (h & 0x8000) ? -value : value;
}

/* Element index as double (is_float) or as int64 (else): both from one read. */
static void read_element(const rlx_tensor *t, uint64_t index, double *f, int64_t *i) {
    size_t size = rlx_dtype_size(t->dtype);
    const unsigned char *p = element(t, index, size);
    *f = 0.0;
    *i = 0;
    if (p == NULL) return;
    switch (t->dtype) {
    case RLX_BOOL: *i = p[0] != 0; *f = (double)*i; break;
    case RLX_UINT8: *i = p[0]; *f = (double)*i; break;
    case RLX_INT8: { int8_t v; memcpy(&v, p, 1); *i = v; *f = v; break; }
    case RLX_UINT16: { uint16_t v; memcpy(&v, p, 2); *i = v; *f = v; break; }
    case RLX_INT16: { int16_t v; memcpy(&v, p, 2); *i = v; *f = v; break; }
    case RLX_UINT32: { uint32_t v; memcpy(&v, p, 4); *i = v; *f = v; break; }
    case RLX_INT32: { int32_t v; memcpy(&v, p, 4); *i = v; *f = v; break; }
    case RLX_UINT64: { uint64_t v; memcpy(&v, p, 8); *i = (int64_t)v; *f = (double)v; break; }
    case RLX_INT64: { int64_t v; memcpy(&v, p, 8); *i = v; *f = (double)v; break; }
    case RLX_FLOAT16: { uint16_t v; memcpy(&v, p, 2); *f = half_to_double(v); break; }
    case RLX_FLOAT32: { float v; memcpy(&v, p, 4); *f = v; break; }
    case RLX_FLOAT64: { memcpy(f, p, 8); break; }
    default: break;
    }
    if (t->dtype >= RLX_FLOAT16) {
        /* a float as an integer: truncated toward 0, NaN as 0, saturated at the int64 range */
        if (*f != *f) *i = 0;
        else if (*f >= 9223372036854775807.0) *i = INT64_MAX;
        else if (*f <= -9223372036854775808.0) *i = INT64_MIN;
        else *i = (int64_t)*f;
    }
}

int64_t rlx_tensor_i64(const rlx_tensor *t, uint64_t index) {
    double f;
    int64_t i;
    read_element(t, index, &f, &i);
    return i;
}

double rlx_tensor_f64(const rlx_tensor *t, uint64_t index) {
    double f;
    int64_t i;
    read_element(t, index, &f, &i);
    return f;
}

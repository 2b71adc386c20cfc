/* The RLX version 1 codec: the checks of docs/protocol.md section 5, in its order. */
#include "codec.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* -- the schema (relaax_zmq/protocol/schema.py) -------------------------------------------- */

enum shape_rule { SESSION_VECTOR = 1, PER_SESSION, VECTOR, SCALAR };

#define DT(code) (1u << (code))
#define ANY_DTYPE 0x1FFEu /* codes 1..12 */
#define FLOATS (DT(RLX_FLOAT32) | DT(RLX_FLOAT64))
#define ROLE(r) ((uint16_t)(1u << (r)))

typedef struct role_rule {
    uint16_t dtypes;
    uint8_t shape;
} role_rule;

static const role_rule ROLE_RULES[RLX_ROLE_COUNT + 1] = {
    {0, 0},
    {FLOATS, SESSION_VECTOR},            /* reward */
    {ANY_DTYPE, PER_SESSION},            /* state */
    {DT(RLX_UINT8), SESSION_VECTOR},     /* episode_flags */
    {ANY_DTYPE, PER_SESSION},            /* action */
    {DT(RLX_UINT8), VECTOR},             /* metric_names */
    {DT(RLX_FLOAT64), VECTOR},           /* metric_values */
    {DT(RLX_UINT8), VECTOR},             /* histogram_names */
    {DT(RLX_UINT32), VECTOR},            /* histogram_lengths */
    {FLOATS, VECTOR},                    /* histogram_values */
    {DT(RLX_UINT16), SCALAR},            /* error_code */
    {DT(RLX_UINT8), VECTOR},             /* text */
    {DT(RLX_UINT8), VECTOR},             /* versions */
};

typedef struct type_rule {
    uint16_t flags;
    uint16_t roles;
    uint16_t required;
    uint8_t min_sessions;
} type_rule;

static const type_rule TYPE_RULES[11] = {
    {0, 0, 0, 0},
    {RLX_FLAG_EXPLOIT, 0, 0, 1},                                                  /* init */
    {RLX_FLAG_EXPLOIT, ROLE(RLX_ROLE_VERSIONS), 0, 1},                            /* ready */
    {RLX_FLAG_TERMINAL | RLX_FLAG_TRUNCATED,
     ROLE(RLX_ROLE_REWARD) | ROLE(RLX_ROLE_STATE) | ROLE(RLX_ROLE_EPISODE_FLAGS), 0, 1}, /* update */
    {RLX_FLAG_RESTART, ROLE(RLX_ROLE_ACTION), ROLE(RLX_ROLE_ACTION), 1},          /* action */
    {0, 0, 0, 1},                                                                 /* reset */
    {RLX_FLAG_RESTART, 0, 0, 0},                                                  /* done */
    {0,
     ROLE(RLX_ROLE_METRIC_NAMES) | ROLE(RLX_ROLE_METRIC_VALUES) | ROLE(RLX_ROLE_HISTOGRAM_NAMES) |
         ROLE(RLX_ROLE_HISTOGRAM_LENGTHS) | ROLE(RLX_ROLE_HISTOGRAM_VALUES),
     0, 1},                                                                       /* metrics */
    {0, 0, 0, 0},                                                                 /* close */
    {0, 0, 0, 0},                                                                 /* heartbeat */
    {RLX_FLAG_RESTART,
     ROLE(RLX_ROLE_ERROR_CODE) | ROLE(RLX_ROLE_TEXT) | ROLE(RLX_ROLE_VERSIONS),
     ROLE(RLX_ROLE_ERROR_CODE), 0},                                               /* error */
};

static const char *const ROLE_NAMES[RLX_ROLE_COUNT + 1] = {
    "", "reward", "state", "episode_flags", "action", "metric_names", "metric_values",
    "histogram_names", "histogram_lengths", "histogram_values", "error_code", "text", "versions"};
static const char *const TYPE_NAMES[11] = {"",      "init",  "ready",   "update",    "action", "reset",
                                           "done",  "metrics", "close", "heartbeat", "error"};
static const char *const DTYPE_NAMES[13] = {"",      "bool",  "uint8",  "int8",   "uint16",
                                            "int16", "uint32", "int32", "uint64", "int64",
                                            "float16", "float32", "float64"};
static const uint8_t DTYPE_SIZES[13] = {0, 1, 1, 1, 2, 2, 4, 4, 8, 8, 2, 4, 8};

const char *rlx_role_name(int role) {
    return role >= 1 && role <= RLX_ROLE_COUNT ? ROLE_NAMES[role] : "unknown role";
}
const char *rlx_type_name(int type) {
    return type >= 1 && type <= 10 ? TYPE_NAMES[type] : "unknown type";
}
const char *rlx_dtype_name(int dtype) {
    return dtype >= 1 && dtype <= 12 ? DTYPE_NAMES[dtype] : "unknown dtype";
}
size_t rlx_dtype_size(int dtype) { return dtype >= 1 && dtype <= 12 ? DTYPE_SIZES[dtype] : 0; }

rlx_limits rlx_default_limits(void) {
    rlx_limits l;
    l.max_elements = (uint64_t)1 << 28;
    l.max_tensors = 64;
    l.max_sessions = 4096;
    return l;
}

/* -- little-endian fields ------------------------------------------------------------------ */

static uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }
static uint32_t rd32(const uint8_t *p) {
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}
static uint64_t rd64(const uint8_t *p) { return (uint64_t)rd32(p) | ((uint64_t)rd32(p + 4) << 32); }
static void wr16(uint8_t *p, uint16_t v) {
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}
static void wr32(uint8_t *p, uint32_t v) {
    wr16(p, (uint16_t)v);
    wr16(p + 2, (uint16_t)(v >> 16));
}
static void wr64(uint8_t *p, uint64_t v) {
    wr32(p, (uint32_t)v);
    wr32(p + 4, (uint32_t)(v >> 32));
}

/* -- errors -------------------------------------------------------------------------------- */

/* "FIELD: expected ..., got ..." (the Python ProtocolError text); returns RLX_E_PROTOCOL */
static int fail(rlx_codec_error *err, const char *field, const char *fmt, ...) RLX_PRINTF(3, 4);
static int fail(rlx_codec_error *err, const char *field, const char *fmt, ...) {
    if (err != NULL) {
        va_list ap;
        int used;
        snprintf(err->field, sizeof err->field, "%s", field);
        used = snprintf(err->text, sizeof err->text, "%s: ", field);
        if (used < 0 || (size_t)used >= sizeof err->text) used = 0;
        va_start(ap, fmt);
        vsnprintf(err->text + used, sizeof err->text - (size_t)used, fmt, ap);
        va_end(ap);
    }
    return RLX_E_PROTOCOL;
}

static void tensor_field(char *out, size_t size, unsigned i, const char *what) {
    snprintf(out, size, "tensor[%u].%s", i, what);
}

/* "(1, 4)" as Python prints a shape tuple */
static void format_shape(char *out, size_t size, const uint32_t *shape, unsigned ndim) {
    size_t used = 0;
    unsigned d;
    out[0] = '\0';
    if (size < 4) return;
    out[used++] = '(';
    for (d = 0; d < ndim && used + 16 < size; d++) {
        int n = snprintf(out + used, size - used, d ? ", %" PRIu32 : "%" PRIu32, shape[d]);
        if (n > 0) used += (size_t)n;
    }
    if (ndim == 1 && used + 2 < size) out[used++] = ',';
    out[used++] = ')';
    out[used] = '\0';
}

/* "one of: episode_flags, reward, state" (names sorted as Python sorts them) */
static void allowed_roles(char *out, size_t size, uint16_t roles) {
    static const uint8_t SORTED[RLX_ROLE_COUNT] = {
        RLX_ROLE_ACTION,          RLX_ROLE_EPISODE_FLAGS,  RLX_ROLE_ERROR_CODE, RLX_ROLE_HISTOGRAM_LENGTHS,
        RLX_ROLE_HISTOGRAM_NAMES, RLX_ROLE_HISTOGRAM_VALUES, RLX_ROLE_METRIC_NAMES, RLX_ROLE_METRIC_VALUES,
        RLX_ROLE_REWARD,          RLX_ROLE_STATE,          RLX_ROLE_TEXT,       RLX_ROLE_VERSIONS};
    size_t used = 0;
    unsigned i;
    out[0] = '\0';
    for (i = 0; i < RLX_ROLE_COUNT; i++) {
        if (roles & ROLE(SORTED[i])) {
            int n = snprintf(out + used, size - used, "%s%s", used ? ", " : "", ROLE_NAMES[SORTED[i]]);
            if (n < 0 || (size_t)n >= size - used) return;
            used += (size_t)n;
        }
    }
    if (!used) snprintf(out, size, "none");
}

static void allowed_dtypes(char *out, size_t size, uint16_t dtypes) {
    size_t used = 0;
    int code;
    out[0] = '\0';
    for (code = 1; code <= 12; code++) {
        if (dtypes & DT(code)) {
            int n = snprintf(out + used, size - used, "%s%s", used ? ", " : "", DTYPE_NAMES[code]);
            if (n < 0 || (size_t)n >= size - used) return;
            used += (size_t)n;
        }
    }
}

/* -- checks shared by encode and decode ---------------------------------------------------- */

static const type_rule *check_header(unsigned version, unsigned type, unsigned flags,
                                     unsigned reserved, uint32_t n, unsigned count,
                                     const rlx_limits *limits, rlx_codec_error *err) {
    const type_rule *rule;
    if (version != RLX_PROTOCOL_VERSION) {
        fail(err, "header.version", "expected one of [1], got %u", version);
        return NULL;
    }
    if (type < 1 || type > 10) {
        fail(err, "header.type", "expected a message type 1..10, got %u", type);
        return NULL;
    }
    rule = &TYPE_RULES[type];
    if (flags & ~(unsigned)RLX_KNOWN_FLAGS) {
        fail(err, "header.flags", "expected only bits 0x%x, got 0x%x", RLX_KNOWN_FLAGS, flags);
        return NULL;
    }
    if (flags & ~(unsigned)rule->flags) {
        fail(err, "header.flags", "expected only bits 0x%x for %s, got 0x%x", rule->flags,
             TYPE_NAMES[type], flags);
        return NULL;
    }
    if (reserved) {
        fail(err, "header.reserved", "expected 0, got %u", reserved);
        return NULL;
    }
    if (n < rule->min_sessions || n > limits->max_sessions) {
        fail(err, "header.session_count", "expected %u..%" PRIu32 ", got %" PRIu32,
             rule->min_sessions, limits->max_sessions, n);
        return NULL;
    }
    if (count > limits->max_tensors) {
        fail(err, "header.tensor_count", "expected at most %" PRIu32 ", got %u", limits->max_tensors,
             count);
        return NULL;
    }
    return rule;
}

/* Validate one descriptor (after its reserved bytes); the element count in *elements. */
static int check_tensor(unsigned i, unsigned role, unsigned dtype, unsigned ndim,
                        const uint32_t *shape, const type_rule *rule, uint32_t n,
                        const rlx_limits *limits, uint16_t seen, uint64_t *elements,
                        rlx_codec_error *err) {
    char field[32], text[160], got[120];
    const role_rule *rr;
    uint64_t count = 1;
    int overflow = 0, empty = 0;
    unsigned d;

    tensor_field(field, sizeof field, i, "role");
    if (role < 1 || role > RLX_ROLE_COUNT) return fail(err, field, "expected a role 1..12, got %u", role);
    if (!(rule->roles & ROLE(role))) {
        allowed_roles(text, sizeof text, rule->roles);
        return fail(err, field, "expected one of: %s, got %s", text, ROLE_NAMES[role]);
    }
    if (seen & ROLE(role))
        return fail(err, field, "expected each role at most once, got %s again", ROLE_NAMES[role]);
    rr = &ROLE_RULES[role];
    tensor_field(field, sizeof field, i, "dtype");
    if (dtype < 1 || dtype > 12) return fail(err, field, "expected a dtype code 1..12, got %u", dtype);
    if (!(rr->dtypes & DT(dtype))) {
        allowed_dtypes(text, sizeof text, rr->dtypes);
        return fail(err, field, "expected one of %s for %s, got %s", text, ROLE_NAMES[role],
                    DTYPE_NAMES[dtype]);
    }
    if (ndim > RLX_MAX_NDIM) {
        tensor_field(field, sizeof field, i, "ndim");
        return fail(err, field, "expected at most %d, got %u", RLX_MAX_NDIM, ndim);
    }
    tensor_field(field, sizeof field, i, "shape");
    for (d = ndim; d < RLX_MAX_NDIM; d++) {
        if (shape[d]) {
            snprintf(got, sizeof got, "[%" PRIu32 ", %" PRIu32 ", %" PRIu32 ", %" PRIu32 ", %" PRIu32
                     ", %" PRIu32 ", %" PRIu32 ", %" PRIu32 "]",
                     shape[0], shape[1], shape[2], shape[3], shape[4], shape[5], shape[6], shape[7]);
            return fail(err, field, "expected unused dimensions 0, got %s", got);
        }
    }
    /* the product of the non-zero dimensions is bounded even when one is 0 (an empty tensor) */
    for (d = 0; d < ndim; d++) {
        if (shape[d] == 0) {
            empty = 1;
            continue;
        }
        if (!overflow && count > UINT64_MAX / shape[d]) overflow = 1;
        if (!overflow) count *= shape[d];
    }
    if (overflow || count > limits->max_elements) {
        tensor_field(field, sizeof field, i, "elements");
        if (overflow)
            return fail(err, field, "expected at most %" PRIu64 ", got more than 2**64",
                        limits->max_elements);
        return fail(err, field, "expected at most %" PRIu64 ", got %" PRIu64, limits->max_elements, count);
    }
    if (empty) count = 0;
    {
        int ok;
        char want[48];
        switch (rr->shape) {
        case SESSION_VECTOR:
            ok = ndim == 1 && shape[0] == n;
            snprintf(want, sizeof want, "(%" PRIu32 ",)", n);
            break;
        case PER_SESSION:
            ok = ndim >= 1 && shape[0] == n;
            snprintf(want, sizeof want, "(%" PRIu32 ", ...)", n);
            break;
        case VECTOR:
            ok = ndim == 1;
            snprintf(want, sizeof want, "one dimension");
            break;
        default:
            ok = ndim == 0;
            snprintf(want, sizeof want, "a scalar ()");
            break;
        }
        if (!ok) {
            format_shape(got, sizeof got, shape, ndim);
            return fail(err, field, "expected %s, got %s", want, got);
        }
    }
    *elements = count;
    return 0;
}

static int check_required(const type_rule *rule, uint16_t present, rlx_codec_error *err) {
    int role;
    for (role = 1; role <= RLX_ROLE_COUNT; role++) {
        if ((rule->required & ROLE(role)) && !(present & ROLE(role)))
            return fail(err, "tensors", "expected a %s tensor, got none", ROLE_NAMES[role]);
    }
    return 0;
}

static int check_episode_flags(unsigned flags, const rlx_tensor *t, rlx_codec_error *err) {
    const uint8_t *values;
    unsigned max = 0;
    size_t i;
    if (t == NULL) return 0;
    if (flags & (RLX_FLAG_TERMINAL | RLX_FLAG_TRUNCATED))
        return fail(err, "header.flags",
                    "expected no terminal/truncated bits beside an episode_flags tensor, got 0x%x", flags);
    values = (const uint8_t *)t->data;
    for (i = 0; i < t->nbytes; i++)
        if (values[i] > max) max = values[i];
    if (max & ~3u) return fail(err, "episode_flags", "expected only bits 0x3, got 0x%x", max);
    return 0;
}

/* elements * itemsize, or UINT64_MAX when it does not fit */
static uint64_t payload_bytes(uint64_t elements, unsigned dtype) {
    uint64_t size = DTYPE_SIZES[dtype];
    return elements > UINT64_MAX / size ? UINT64_MAX : elements * size;
}

/* -- messages ------------------------------------------------------------------------------ */

void rlx_message_init(rlx_message *m, uint8_t type) {
    memset(m, 0, sizeof *m);
    m->version = RLX_PROTOCOL_VERSION;
    m->type = type;
}

void rlx_message_set(rlx_message *m, int role, const rlx_tensor *t) {
    if (role < 1 || role > RLX_ROLE_COUNT) return;
    m->roles[role] = *t;
    m->present |= ROLE(role);
}

const rlx_tensor *rlx_message_get(const rlx_message *m, int role) {
    if (role < 1 || role > RLX_ROLE_COUNT || !(m->present & ROLE(role))) return NULL;
    return &m->roles[role];
}

unsigned rlx_message_count(const rlx_message *m) {
    unsigned count = 0;
    int role;
    for (role = 1; role <= RLX_ROLE_COUNT; role++) count += (m->present >> role) & 1u;
    return count;
}

size_t rlx_encoded_head_size(const rlx_message *m) {
    return RLX_HEADER_SIZE + RLX_DESCRIPTOR_SIZE * (size_t)rlx_message_count(m);
}

/* -- encode -------------------------------------------------------------------------------- */

int rlx_encode(const rlx_message *m, const rlx_limits *limits, uint8_t *head, size_t head_cap,
               rlx_frame *frames, size_t frames_cap, size_t *nframes, rlx_codec_error *err) {
    const type_rule *rule;
    unsigned count = rlx_message_count(m), i = 0;
    uint16_t present = 0;
    int role;
    char field[32];

    if (m->present & 1u) return fail(err, "tensors", "expected roles 1..12, got role 0");
    rule = check_header(m->version, m->type, m->flags, 0, m->session_count, count, limits, err);
    if (rule == NULL) return RLX_E_PROTOCOL;
    if (head_cap < rlx_encoded_head_size(m) || frames_cap < 1u + (count > 0) + count)
        return fail(err, "frames", "expected room for %u tensors, got %zu bytes and %zu frames", count,
                    head_cap, frames_cap);
    memcpy(head, "RLXP", 4);
    head[4] = m->version;
    head[5] = m->type;
    wr16(head + 6, m->flags);
    wr64(head + 8, m->sequence);
    wr64(head + 16, m->session_id);
    wr32(head + 24, m->session_count);
    wr16(head + 28, (uint16_t)count);
    wr16(head + 30, 0);
    frames[0].data = head;
    frames[0].size = RLX_HEADER_SIZE;
    for (role = 1; role <= RLX_ROLE_COUNT; role++) {
        const rlx_tensor *t;
        uint32_t shape[RLX_MAX_NDIM] = {0};
        uint8_t *d = head + RLX_HEADER_SIZE + RLX_DESCRIPTOR_SIZE * i;
        uint64_t elements = 0, bytes;
        unsigned k;
        if (!(m->present & ROLE(role))) continue;
        t = &m->roles[role];
        if (t->ndim > RLX_MAX_NDIM) {
            tensor_field(field, sizeof field, i, "ndim");
            return fail(err, field, "expected at most %d, got %u", RLX_MAX_NDIM, t->ndim);
        }
        for (k = 0; k < t->ndim; k++) shape[k] = t->shape[k];
        if (check_tensor(i, (unsigned)role, t->dtype, t->ndim, shape, rule, m->session_count, limits, 0,
                         &elements, err))
            return RLX_E_PROTOCOL;
        bytes = payload_bytes(elements, t->dtype);
        if (bytes > SIZE_MAX || (bytes > 0 && t->data == NULL)) {
            tensor_field(field, sizeof field, i, "payload");
            return fail(err, field, "expected %" PRIu64 " bytes of data, got %s", bytes,
                        t->data == NULL ? "NULL" : "more than memory holds");
        }
        wr16(d, (uint16_t)role);
        d[2] = t->dtype;
        d[3] = t->ndim;
        wr32(d + 4, 0);
        for (k = 0; k < RLX_MAX_NDIM; k++) wr32(d + 8 + 4 * k, shape[k]);
        frames[2 + i].data = (const uint8_t *)t->data;
        frames[2 + i].size = (size_t)bytes;
        present |= ROLE(role);
        i++;
    }
    if (check_required(rule, present, err)) return RLX_E_PROTOCOL;
    if (present & ROLE(RLX_ROLE_EPISODE_FLAGS)) {
        rlx_tensor flags = m->roles[RLX_ROLE_EPISODE_FLAGS];
        flags.nbytes = (size_t)rlx_tensor_elements(&flags); /* uint8: one byte each */
        if (check_episode_flags(m->flags, &flags, err)) return RLX_E_PROTOCOL;
    }
    if (count) {
        frames[1].data = head + RLX_HEADER_SIZE;
        frames[1].size = RLX_DESCRIPTOR_SIZE * (size_t)count;
    }
    *nframes = 1u + (count > 0) + count;
    return RLX_OK;
}

/* -- decode -------------------------------------------------------------------------------- */

static int check_frame(const rlx_frame *f, size_t index, rlx_codec_error *err) {
    char field[32];
    if (f->data == NULL && f->size > 0) {
        snprintf(field, sizeof field, "frames[%zu]", index);
        return fail(err, field, "expected a contiguous byte buffer, got NULL");
    }
    return 0;
}

int rlx_decode(const rlx_frame *frames, size_t count, const rlx_limits *limits, rlx_message *m,
               rlx_codec_error *err) {
    const uint8_t *h;
    const type_rule *rule;
    unsigned tensors, i;
    size_t expected;

    memset(m, 0, sizeof *m);
    if (count < 1) return fail(err, "frames", "expected at least 1 frame (the header), got 0 frames");
    if (check_frame(&frames[0], 0, err)) return RLX_E_PROTOCOL;
    if (frames[0].size != RLX_HEADER_SIZE)
        return fail(err, "header", "expected 32 bytes, got %zu bytes", frames[0].size);
    h = frames[0].data;
    if (memcmp(h, "RLXP", 4) != 0)
        return fail(err, "header.magic", "expected 52 4c 58 50 (RLXP), got %02x %02x %02x %02x", h[0], h[1],
                    h[2], h[3]);
    m->version = h[4];
    m->type = h[5];
    m->flags = rd16(h + 6);
    m->sequence = rd64(h + 8);
    m->session_id = rd64(h + 16);
    m->session_count = rd32(h + 24);
    tensors = rd16(h + 28);
    rule = check_header(m->version, m->type, m->flags, rd16(h + 30), m->session_count, tensors, limits, err);
    if (rule == NULL) return RLX_E_PROTOCOL;
    expected = 1u + (tensors > 0) + tensors;
    if (count != expected)
        return fail(err, "frames", "expected %zu frames, got %zu frames", expected, count);
    if (tensors) {
        const uint8_t *table;
        if (check_frame(&frames[1], 1, err)) return RLX_E_PROTOCOL;
        if (frames[1].size != RLX_DESCRIPTOR_SIZE * (size_t)tensors)
            return fail(err, "descriptors", "expected %zu bytes, got %zu bytes",
                        RLX_DESCRIPTOR_SIZE * (size_t)tensors, frames[1].size);
        table = frames[1].data;
        for (i = 0; i < tensors; i++) {
            const uint8_t *d = table + RLX_DESCRIPTOR_SIZE * (size_t)i;
            unsigned role = rd16(d), dtype = d[2], ndim = d[3], k;
            uint32_t reserved = rd32(d + 4), shape[RLX_MAX_NDIM];
            uint64_t elements = 0, bytes;
            char field[32];
            rlx_tensor *t;
            const rlx_frame *payload = &frames[2 + i];
            for (k = 0; k < RLX_MAX_NDIM; k++) shape[k] = rd32(d + 8 + 4 * k);
            if (reserved) {
                tensor_field(field, sizeof field, i, "reserved");
                return fail(err, field, "expected 0, got %" PRIu32, reserved);
            }
            if (check_tensor(i, role, dtype, ndim, shape, rule, m->session_count, limits, m->present,
                             &elements, err))
                return RLX_E_PROTOCOL;
            if (check_frame(payload, 2 + i, err)) return RLX_E_PROTOCOL;
            bytes = payload_bytes(elements, dtype);
            if ((uint64_t)payload->size != bytes) {
                tensor_field(field, sizeof field, i, "payload");
                return fail(err, field, "expected %" PRIu64 " bytes, got %zu bytes", bytes, payload->size);
            }
            t = &m->roles[role];
            t->dtype = (uint8_t)dtype;
            t->ndim = (uint8_t)ndim;
            memcpy(t->shape, shape, sizeof shape);
            t->data = payload->data;
            t->nbytes = payload->size;
            m->present |= ROLE(role);
        }
    }
    if (check_required(rule, m->present, err)) return RLX_E_PROTOCOL;
    return check_episode_flags(m->flags, rlx_message_get(m, RLX_ROLE_EPISODE_FLAGS), err);
    return RLX_OK;
}

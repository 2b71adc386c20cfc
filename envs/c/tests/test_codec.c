/*
 * The C codec against the RLX test vectors, byte for byte, and against malformed input.
 *
 * usage: test_codec VECTOR_FILE
 *
 * - every valid vector: its meaning encodes to exactly its frames, its frames decode to exactly
 *   its meaning;
 * - every invalid vector is refused naming the vector's field;
 * - malformed variants of every valid vector (each frame truncated or extended, frames dropped
 *   or added, every header and descriptor byte mutated), each frame in a buffer of exactly its
 *   size so that AddressSanitizer catches any read past it: refused, or when accepted the
 *   message re-encodes to the same frames;
 * - targeted cases: magic, versions, types, flags, dtypes per role, shapes, limits, NULL frames;
 * - encoder refusals and the tensor element readers.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "rlx.h"
#include "vectors.h"

static int failures = 0;
static long checks = 0;

#define CHECK(cond, ...)                                   \
    do {                                                   \
        checks++;                                          \
        if (!(cond)) {                                     \
            failures++;                                    \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__); \
            fprintf(stderr, __VA_ARGS__);                  \
            fputc('\n', stderr);                           \
        }                                                  \
    } while (0)

/* frames in exactly-sized heap buffers (ASan reports a read one byte past any of them) */
typedef struct owned {
    rlx_frame frames[VEC_MAX_FRAMES + 4];
    size_t count;
} owned;

static void own(owned *o, const uint8_t *const *data, const size_t *sizes, size_t count) {
    size_t i;
    o->count = count;
    for (i = 0; i < count; i++) {
        uint8_t *copy = sizes[i] ? (uint8_t *)malloc(sizes[i]) : NULL;
        if (sizes[i]) memcpy(copy, data[i], sizes[i]);
        o->frames[i].data = copy;
        o->frames[i].size = sizes[i];
    }
}

static void own_vector(owned *o, const vec_entry *v) {
    own(o, (const uint8_t *const *)v->frames, v->sizes, (size_t)v->nframes);
}

static void release(owned *o) {
    size_t i;
    for (i = 0; i < o->count; i++) free((void *)o->frames[i].data);
    o->count = 0;
}

static int same_bytes(const void *a, size_t na, const void *b, size_t nb) {
    return na == nb && (na == 0 || memcmp(a, b, na) == 0);
}

static void message_of(const vec_entry *v, rlx_message *m) {
    int k;
    rlx_message_init(m, (uint8_t)v->type);
    m->version = (uint8_t)v->version;
    m->flags = (uint16_t)v->flags;
    m->sequence = v->sequence;
    m->session_id = v->session_id;
    m->session_count = v->session_count;
    for (k = 0; k < v->ntensors; k++) {
        const vec_tensor *t = &v->tensors[k];
        rlx_tensor x = rlx_tensor_of(t->dtype, t->bytes, t->ndim, t->shape);
        rlx_message_set(m, t->role, &x);
    }
}

/* a and b hold the same header and tensors (dtype, shape, bytes) */
static int same_message(const rlx_message *a, const rlx_message *b, char *why, size_t size) {
    int role;
    if (a->version != b->version || a->type != b->type || a->flags != b->flags || a->sequence != b->sequence ||
        a->session_id != b->session_id || a->session_count != b->session_count) {
        snprintf(why, size, "header fields differ");
        return 0;
    }
    if (a->present != b->present) {
        snprintf(why, size, "roles present 0x%x vs 0x%x", a->present, b->present);
        return 0;
    }
    for (role = 1; role <= RLX_ROLE_COUNT; role++) {
        const rlx_tensor *x = rlx_message_get(a, role), *y = rlx_message_get(b, role);
        if (x == NULL) continue;
        if (x->dtype != y->dtype || x->ndim != y->ndim ||
            memcmp(x->shape, y->shape, sizeof(uint32_t) * x->ndim) != 0 ||
            !same_bytes(x->data, x->nbytes, y->data, y->nbytes)) {
            snprintf(why, size, "tensor %s differs", rlx_role_name(role));
            return 0;
        }
    }
    return 1;
}

/* -- the vectors --------------------------------------------------------------------------- */

static void valid_vector(const vec_entry *v) {
    rlx_limits limits = rlx_default_limits();
    rlx_message m, decoded;
    rlx_frame frames[VEC_MAX_FRAMES];
    uint8_t head[RLX_HEADER_SIZE + RLX_DESCRIPTOR_SIZE * 16];
    rlx_codec_error err;
    size_t count = 0, i;
    owned o;
    int rc, k;

    message_of(v, &m);
    rc = rlx_encode(&m, &limits, head, sizeof head, frames, VEC_MAX_FRAMES, &count, &err);
    CHECK(rc == RLX_OK, "%s: encode refused: %s", v->name, err.text);
    if (rc == RLX_OK) {
        CHECK(count == (size_t)v->nframes, "%s: %zu frames encoded, %d expected", v->name, count, v->nframes);
        for (i = 0; i < count && i < (size_t)v->nframes; i++)
            CHECK(same_bytes(frames[i].data, frames[i].size, v->frames[i], v->sizes[i]),
                  "%s: frame %zu differs (%zu bytes vs %zu)", v->name, i, frames[i].size, v->sizes[i]);
    }

    own_vector(&o, v);
    rc = rlx_decode(o.frames, o.count, &limits, &decoded, &err);
    CHECK(rc == RLX_OK, "%s: decode refused: %s", v->name, err.text);
    if (rc == RLX_OK) {
        CHECK(decoded.version == v->version && decoded.type == v->type && decoded.flags == v->flags &&
                  decoded.sequence == v->sequence && decoded.session_id == v->session_id &&
                  decoded.session_count == v->session_count,
              "%s: decoded header differs", v->name);
        CHECK(rlx_message_count(&decoded) == (unsigned)v->ntensors, "%s: %u tensors decoded, %d expected", v->name,
              rlx_message_count(&decoded), v->ntensors);
        for (k = 0; k < v->ntensors; k++) {
            const vec_tensor *t = &v->tensors[k];
            const rlx_tensor *x = rlx_message_get(&decoded, t->role);
            CHECK(x != NULL, "%s: role %d missing", v->name, t->role);
            if (x == NULL) continue;
            CHECK(x->dtype == t->dtype && x->ndim == t->ndim &&
                      memcmp(x->shape, t->shape, sizeof(uint32_t) * (size_t)t->ndim) == 0,
                  "%s: %s dtype/shape differ", v->name, rlx_role_name(t->role));
            CHECK(same_bytes(x->data, x->nbytes, t->bytes, t->nbytes), "%s: %s values differ", v->name,
                  rlx_role_name(t->role));
            /* decoded tensors point into the frames, never copies */
            CHECK(x->nbytes == 0 || (x->data == o.frames[2 + k].data), "%s: %s not a view of its frame", v->name,
                  rlx_role_name(t->role));
        }
    }
    release(&o);
}

static void invalid_vector(const vec_entry *v) {
    rlx_limits limits = rlx_default_limits();
    rlx_message m;
    rlx_codec_error err;
    owned o;
    int rc;
    own_vector(&o, v);
    memset(&err, 0, sizeof err);
    rc = rlx_decode(o.frames, o.count, &limits, &m, &err);
    CHECK(rc == RLX_E_PROTOCOL, "%s: accepted, expected a refusal naming %s", v->name, v->error_field);
    CHECK(strcmp(err.field, v->error_field) == 0, "%s: refused naming %s (%s), expected %s", v->name, err.field,
          err.text, v->error_field);
    CHECK(strncmp(err.text, err.field, strlen(err.field)) == 0 && strstr(err.text, "expected") != NULL,
          "%s: text \"%s\" does not say field, expected and got", v->name, err.text);
    release(&o);
}

/* -- malformed variants -------------------------------------------------------------------- */

static long refused = 0, accepted = 0;

/* Decode frames; if accepted, the message re-encodes to an equal message (and to the same
   bytes when its roles came in ascending order). Returns the decode status. */
static int decode_and_round_trip(const rlx_frame *frames, size_t count, const char *what, rlx_codec_error *err) {
    rlx_limits limits = rlx_default_limits();
    rlx_message m, again;
    rlx_frame out[2 + RLX_ROLE_COUNT];
    uint8_t head[RLX_HEADER_SIZE + RLX_DESCRIPTOR_SIZE * RLX_ROLE_COUNT];
    rlx_codec_error e2;
    size_t n = 0, i;
    char why[128];
    int rc = rlx_decode(frames, count, &limits, &m, err);
    if (rc != RLX_OK) {
        refused++;
        CHECK(err->field[0] != '\0' && strstr(err->text, "expected") != NULL, "%s: refusal without a field: %s", what,
              err->text);
        return rc;
    }
    accepted++;
    rc = rlx_encode(&m, &limits, head, sizeof head, out, 2 + RLX_ROLE_COUNT, &n, &e2);
    CHECK(rc == RLX_OK, "%s: accepted but does not re-encode: %s", what, e2.text);
    if (rc != RLX_OK) return RLX_OK;
    rc = rlx_decode(out, n, &limits, &again, &e2);
    CHECK(rc == RLX_OK && same_message(&m, &again, why, sizeof why), "%s: re-encoding changed it: %s", what,
          rc == RLX_OK ? why : e2.text);
    if (n == count) {
        int ascending = 1;
        for (i = 2; i + 1 < count; i++)
            if (frames[1].data[(i - 2) * 40] >= frames[1].data[(i - 1) * 40]) ascending = 0;
        if (ascending) {
            for (i = 0; i < n; i++)
                CHECK(same_bytes(out[i].data, out[i].size, frames[i].data, frames[i].size),
                      "%s: re-encoded frame %zu differs", what, i);
        }
    }
    return RLX_OK;
}

static void resized_frames(const vec_entry *v) {
    int f;
    char what[128];
    for (f = 0; f < v->nframes; f++) {
        size_t original = v->sizes[f], sizes[VEC_MAX_FRAMES], cut;
        const uint8_t *data[VEC_MAX_FRAMES];
        uint8_t longer[4096];
        int k;
        for (k = 0; k < v->nframes; k++) {
            data[k] = v->frames[k];
            sizes[k] = v->sizes[k];
        }
        /* every truncation, and one byte more */
        for (cut = 0; cut <= original + 1; cut++) {
            owned o;
            rlx_codec_error err;
            int rc;
            if (cut == original || cut > sizeof longer) continue;
            if (cut > original) {
                if (original) memcpy(longer, v->frames[f], original);
                longer[original] = 0;
                data[f] = longer;
            } else {
                data[f] = v->frames[f];
            }
            sizes[f] = cut;
            own(&o, data, sizes, (size_t)v->nframes);
            snprintf(what, sizeof what, "%s frame %d resized %zu -> %zu", v->name, f, original, cut);
            rc = decode_and_round_trip(o.frames, o.count, what, &err);
            CHECK(rc == RLX_E_PROTOCOL, "%s: accepted", what);
            if (rc == RLX_E_PROTOCOL) {
                char want[32];
                if (f == 0) snprintf(want, sizeof want, "header");
                else if (f == 1) snprintf(want, sizeof want, "descriptors");
                else snprintf(want, sizeof want, "tensor[%d].payload", f - 2);
                CHECK(strcmp(err.field, want) == 0, "%s: refused naming %s, expected %s", what, err.field, want);
            }
            release(&o);
        }
    }
}

static void frame_counts(const vec_entry *v) {
    const uint8_t *data[VEC_MAX_FRAMES + 3];
    size_t sizes[VEC_MAX_FRAMES + 3];
    static const uint8_t junk[4] = {1, 2, 3, 4};
    char what[128];
    size_t n;
    int k;
    for (k = 0; k < v->nframes; k++) {
        data[k] = v->frames[k];
        sizes[k] = v->sizes[k];
    }
    for (n = 0; n <= (size_t)v->nframes + 3; n++) {
        owned o;
        rlx_codec_error err;
        int rc;
        if (n == (size_t)v->nframes) continue;
        for (k = v->nframes; k < (int)n; k++) {
            data[k] = junk;
            sizes[k] = sizeof junk;
        }
        own(&o, data, sizes, n);
        snprintf(what, sizeof what, "%s with %zu frames", v->name, n);
        rc = decode_and_round_trip(o.frames, o.count, what, &err);
        CHECK(rc == RLX_E_PROTOCOL && strcmp(err.field, "frames") == 0, "%s: expected a refusal naming frames, got %s",
              what, rc == RLX_OK ? "acceptance" : err.field);
        release(&o);
    }
}

/* every byte of the header and the descriptor table set to interesting values */
static void mutated_bytes(const vec_entry *v) {
    static const uint8_t values[] = {0x00, 0x01, 0x02, 0x03, 0x07, 0x08, 0x0b, 0x0c, 0x0d, 0x10,
                                     0x40, 0x7f, 0x80, 0xfe, 0xff};
    int f;
    char what[128];
    for (f = 0; f < 2 && f < v->nframes; f++) {
        size_t at;
        for (at = 0; at < v->sizes[f]; at++) {
            size_t k;
            for (k = 0; k < sizeof values; k++) {
                owned o;
                rlx_codec_error err;
                uint8_t *bytes;
                if (values[k] == v->frames[f][at]) continue;
                own_vector(&o, v);
                bytes = (uint8_t *)o.frames[f].data;
                bytes[at] = values[k];
                snprintf(what, sizeof what, "%s frame %d byte %zu = 0x%02x", v->name, f, at, values[k]);
                decode_and_round_trip(o.frames, o.count, what, &err);
                release(&o);
            }
        }
    }
}

/* -- targeted cases ------------------------------------------------------------------------ */

static void header_frame(uint8_t *h, unsigned version, unsigned type, unsigned flags, uint32_t n, unsigned tensors) {
    memset(h, 0, RLX_HEADER_SIZE);
    memcpy(h, "RLXP", 4);
    h[4] = (uint8_t)version;
    h[5] = (uint8_t)type;
    h[6] = (uint8_t)flags;
    h[7] = (uint8_t)(flags >> 8);
    h[16] = 7;
    h[24] = (uint8_t)n;
    h[25] = (uint8_t)(n >> 8);
    h[26] = (uint8_t)(n >> 16);
    h[27] = (uint8_t)(n >> 24);
    h[28] = (uint8_t)tensors;
    h[29] = (uint8_t)(tensors >> 8);
}

static void descriptor(uint8_t *d, unsigned role, unsigned dtype, unsigned ndim, const uint32_t *shape) {
    unsigned k;
    memset(d, 0, RLX_DESCRIPTOR_SIZE);
    d[0] = (uint8_t)role;
    d[1] = (uint8_t)(role >> 8);
    d[2] = (uint8_t)dtype;
    d[3] = (uint8_t)ndim;
    for (k = 0; k < ndim && k < 8; k++) {
        d[8 + 4 * k] = (uint8_t)shape[k];
        d[9 + 4 * k] = (uint8_t)(shape[k] >> 8);
        d[10 + 4 * k] = (uint8_t)(shape[k] >> 16);
        d[11 + 4 * k] = (uint8_t)(shape[k] >> 24);
    }
}

/* decode copies of frames; expect refusal naming field (NULL: acceptance) */
static void expect(const char *what, const uint8_t *const *data, const size_t *sizes, size_t count,
                   const rlx_limits *limits, const char *field) {
    owned o;
    rlx_message m;
    rlx_codec_error err;
    int rc;
    own(&o, data, sizes, count);
    memset(&err, 0, sizeof err);
    rc = rlx_decode(o.frames, o.count, limits, &m, &err);
    if (field == NULL) CHECK(rc == RLX_OK, "%s: refused: %s", what, err.text);
    else
        CHECK(rc == RLX_E_PROTOCOL && strcmp(err.field, field) == 0, "%s: expected a refusal naming %s, got %s (%s)",
              what, field, rc == RLX_OK ? "acceptance" : err.field, err.text);
    release(&o);
}

static void targeted(void) {
    rlx_limits limits = rlx_default_limits(), small = limits;
    uint8_t h[RLX_HEADER_SIZE], table[RLX_DESCRIPTOR_SIZE * 3], payload[64];
    const uint8_t *data[6];
    size_t sizes[6];
    uint32_t shape[8] = {1, 4, 0, 0, 0, 0, 0, 0};
    unsigned v, type, bit, dtype, role;
    char what[96];
    static const uint16_t allowed_flags[11] = {0, 1, 1, 6, 8, 0, 8, 0, 0, 0, 8};
    static const uint8_t min_sessions[11] = {0, 1, 1, 1, 1, 1, 0, 1, 0, 0, 0};

    memset(payload, 0, sizeof payload);
    data[0] = h;
    sizes[0] = RLX_HEADER_SIZE;

    /* magic: every byte wrong */
    for (v = 0; v < 4; v++) {
        header_frame(h, 1, RLX_MSG_RESET, 0, 1, 0);
        h[v] ^= 0x20;
        snprintf(what, sizeof what, "magic byte %u", v);
        expect(what, data, sizes, 1, &limits, "header.magic");
    }
    /* every version but 1 */
    for (v = 0; v < 256; v++) {
        header_frame(h, v, RLX_MSG_RESET, 0, 1, 0);
        snprintf(what, sizeof what, "version %u", v);
        expect(what, data, sizes, 1, &limits, v == 1 ? NULL : "header.version");
    }
    /* every type byte; every flag bit for every type; the session-count minimum of every type */
    for (type = 0; type < 256; type++) {
        header_frame(h, 1, type, 0, 1, 0);
        snprintf(what, sizeof what, "type %u", type);
        if (type < 1 || type > 10) {
            expect(what, data, sizes, 1, &limits, "header.type");
            continue;
        }
        if (type == RLX_MSG_ACTION || type == RLX_MSG_ERROR) continue; /* need a tensor */
        expect(what, data, sizes, 1, &limits, NULL);
        for (bit = 0; bit < 16; bit++) {
            header_frame(h, 1, type, 1u << bit, 1, 0);
            snprintf(what, sizeof what, "type %u flag 0x%x", type, 1u << bit);
            expect(what, data, sizes, 1, &limits, (allowed_flags[type] >> bit) & 1 ? NULL : "header.flags");
        }
        header_frame(h, 1, type, 0, 0, 0);
        snprintf(what, sizeof what, "type %u without sessions", type);
        expect(what, data, sizes, 1, &limits, min_sessions[type] ? "header.session_count" : NULL);
    }
    /* reserved header bytes */
    header_frame(h, 1, RLX_MSG_RESET, 0, 1, 0);
    h[31] = 1;
    expect("header reserved", data, sizes, 1, &limits, "header.reserved");
    /* configured limits */
    small.max_sessions = 2;
    small.max_tensors = 1;
    small.max_elements = 3;
    header_frame(h, 1, RLX_MSG_RESET, 0, 3, 0);
    expect("3 sessions above max_sessions 2", data, sizes, 1, &small, "header.session_count");
    header_frame(h, 1, RLX_MSG_UPDATE, 0, 1, 2);
    expect("2 tensors above max_tensors 1", data, sizes, 1, &small, "header.tensor_count");
    header_frame(h, 1, RLX_MSG_UPDATE, 0, 1, 65535);
    expect("65535 tensors", data, sizes, 1, &limits, "header.tensor_count");

    /* one state tensor: dtypes, shapes, payloads */
    data[1] = table;
    sizes[1] = RLX_DESCRIPTOR_SIZE;
    data[2] = payload;
    for (dtype = 0; dtype < 256; dtype++) {
        size_t item = rlx_dtype_size((int)dtype);
        header_frame(h, 1, RLX_MSG_UPDATE, 0, 1, 1);
        descriptor(table, RLX_ROLE_STATE, dtype, 2, shape);
        sizes[2] = item ? 4 * item : 4;
        snprintf(what, sizeof what, "state dtype %u", dtype);
        expect(what, data, sizes, 3, &limits, item ? NULL : "tensor[0].dtype");
    }
    /* dtypes not allowed for each role (a one-element vector of each dtype) */
    for (role = 1; role <= RLX_ROLE_COUNT; role++) {
        static const uint16_t dtypes[RLX_ROLE_COUNT + 1] = {0,      0x1800, 0x1FFE, 0x0004, 0x1FFE, 0x0004, 0x1000,
                                                             0x0004, 0x0040, 0x1800, 0x0010, 0x0004, 0x0004};
        static const uint8_t types[RLX_ROLE_COUNT + 1] = {0, 3, 3, 3, 4, 7, 7, 7, 7, 7, 10, 10, 2};
        uint32_t one[8] = {1, 0, 0, 0, 0, 0, 0, 0};
        for (dtype = 1; dtype <= 12; dtype++) {
            unsigned ndim = role == RLX_ROLE_ERROR_CODE ? 0 : 1;
            header_frame(h, 1, types[role], 0, 1, 1);
            descriptor(table, role, dtype, ndim, one);
            sizes[2] = rlx_dtype_size((int)dtype);
            snprintf(what, sizeof what, "%s as %s", rlx_role_name((int)role), rlx_dtype_name((int)dtype));
            /* an allowed text alone is refused for the error_code an error requires */
            expect(what, data, sizes, 3, &limits,
                   !((dtypes[role] >> dtype) & 1) ? "tensor[0].dtype" : role == RLX_ROLE_TEXT ? "tensors" : NULL);
        }
        /* a role not allowed in a reset (none is) */
        header_frame(h, 1, RLX_MSG_RESET, 0, 1, 1);
        descriptor(table, role, 2, 1, one);
        sizes[2] = 1;
        snprintf(what, sizeof what, "%s in a reset", rlx_role_name((int)role));
        expect(what, data, sizes, 3, &limits, "tensor[0].role");
    }
    /* shape rules */
    {
        uint32_t two[8] = {2, 4, 0, 0, 0, 0, 0, 0};
        header_frame(h, 1, RLX_MSG_UPDATE, 0, 1, 1);
        descriptor(table, RLX_ROLE_STATE, RLX_FLOAT32, 2, two);
        sizes[2] = 32;
        expect("state of 2 rows for 1 session", data, sizes, 3, &limits, "tensor[0].shape");
        descriptor(table, RLX_ROLE_STATE, RLX_FLOAT32, 0, two);
        sizes[2] = 4;
        expect("scalar state", data, sizes, 3, &limits, "tensor[0].shape");
        descriptor(table, RLX_ROLE_REWARD, RLX_FLOAT32, 2, shape);
        sizes[2] = 16;
        expect("reward (1, 4)", data, sizes, 3, &limits, "tensor[0].shape");
        header_frame(h, 1, RLX_MSG_ERROR, 0, 0, 1);
        descriptor(table, RLX_ROLE_ERROR_CODE, RLX_UINT16, 1, shape);
        sizes[2] = 2;
        expect("error code of shape (1,)", data, sizes, 3, &limits, "tensor[0].shape");
        header_frame(h, 1, RLX_MSG_METRICS, 0, 1, 1);
        descriptor(table, RLX_ROLE_METRIC_NAMES, RLX_UINT8, 2, two);
        sizes[2] = 8;
        expect("names of 2 dimensions", data, sizes, 3, &limits, "tensor[0].shape");
        header_frame(h, 1, RLX_MSG_UPDATE, 0, 1, 1);
        descriptor(table, RLX_ROLE_STATE, RLX_FLOAT32, 2, shape);
        sizes[2] = 16;
        expect("state (1, 4) within max_elements 3", data, sizes, 3, &small, "tensor[0].elements");
    }
    /* element counts that overflow 64 bits, and a zero dimension among huge ones (refused) */
    {
        uint32_t huge[8] = {1, 0xFFFFFFFFu, 0xFFFFFFFFu, 0xFFFFFFFFu, 0xFFFFFFFFu, 0xFFFFFFFFu, 0xFFFFFFFFu, 0xFFFFFFFFu};
        header_frame(h, 1, RLX_MSG_UPDATE, 0, 1, 1);
        descriptor(table, RLX_ROLE_STATE, RLX_FLOAT64, 8, huge);
        sizes[2] = 0;
        expect("2**224 elements", data, sizes, 3, &limits, "tensor[0].elements");
        huge[7] = 0;
        descriptor(table, RLX_ROLE_STATE, RLX_FLOAT64, 8, huge);
        /* refused like the other codecs: an empty tensor's other dimensions are bounded too */
        expect("huge dimensions with a zero", data, sizes, 3, &limits, "tensor[0].elements");
    }
    /* episode flags */
    {
        uint32_t one[8] = {1, 0, 0, 0, 0, 0, 0, 0};
        for (v = 0; v < 256; v++) {
            payload[0] = (uint8_t)v;
            header_frame(h, 1, RLX_MSG_UPDATE, 0, 1, 1);
            descriptor(table, RLX_ROLE_EPISODE_FLAGS, RLX_UINT8, 1, one);
            sizes[2] = 1;
            snprintf(what, sizeof what, "episode flag 0x%x", v);
            expect(what, data, sizes, 3, &limits, v <= 3 ? NULL : "episode_flags");
        }
        payload[0] = 0;
    }
    /* a NULL frame with a size (a caller's bug, refused before any read) */
    {
        header_frame(h, 1, RLX_MSG_UPDATE, 0, 1, 1);
        descriptor(table, RLX_ROLE_STATE, RLX_FLOAT32, 2, shape);
        {
            rlx_frame frames[3];
            rlx_message m;
            rlx_codec_error err;
            frames[0].data = h;
            frames[0].size = RLX_HEADER_SIZE;
            frames[1].data = table;
            frames[1].size = RLX_DESCRIPTOR_SIZE;
            frames[2].data = NULL;
            frames[2].size = 16;
            CHECK(rlx_decode(frames, 3, &limits, &m, &err) == RLX_E_PROTOCOL && strcmp(err.field, "frames[2]") == 0,
                  "NULL payload: expected frames[2], got %s", err.field);
            frames[1].data = NULL;
            CHECK(rlx_decode(frames, 3, &limits, &m, &err) == RLX_E_PROTOCOL && strcmp(err.field, "frames[1]") == 0,
                  "NULL table: expected frames[1], got %s", err.field);
        }
    }
}

/* -- the encoder refuses what the decoder would -------------------------------------------- */

static void encoder_refusals(void) {
    rlx_limits limits = rlx_default_limits();
    rlx_message m;
    rlx_frame frames[16];
    uint8_t head[RLX_HEADER_SIZE + RLX_DESCRIPTOR_SIZE * 12];
    rlx_codec_error err;
    size_t count;
    float state[8] = {0}, reward = 1.0f;
    int32_t bad_reward = 1;
    uint8_t flags[1] = {4};
    uint32_t shape[9] = {2, 4, 1, 1, 1, 1, 1, 1, 1}, one[1] = {1};
    rlx_tensor t;

#define ENCODE_REFUSES(field_)                                                                              \
    CHECK(rlx_encode(&m, &limits, head, sizeof head, frames, 16, &count, &err) == RLX_E_PROTOCOL &&      \
              strcmp(err.field, field_) == 0,                                                               \
          "encode: expected a refusal naming %s, got %s (%s)", field_, err.field, err.text)

    rlx_message_init(&m, RLX_MSG_UPDATE);
    m.session_count = 1;
    t = rlx_tensor_of(RLX_FLOAT32, state, 2, shape);
    rlx_message_set(&m, RLX_ROLE_STATE, &t);
    memset(&err, 0, sizeof err);
    ENCODE_REFUSES("tensor[0].shape");
    rlx_message_init(&m, RLX_MSG_UPDATE);
    m.session_count = 1;
    t = rlx_tensor_of(RLX_INT32, &bad_reward, 1, one);
    rlx_message_set(&m, RLX_ROLE_REWARD, &t);
    ENCODE_REFUSES("tensor[0].dtype");
    rlx_message_init(&m, RLX_MSG_UPDATE);
    m.session_count = 1;
    m.flags = RLX_FLAG_TERMINAL;
    t = rlx_tensor_of(RLX_UINT8, flags, 1, one);
    rlx_message_set(&m, RLX_ROLE_EPISODE_FLAGS, &t);
    ENCODE_REFUSES("header.flags");
    m.flags = 0;
    ENCODE_REFUSES("episode_flags");
    rlx_message_init(&m, RLX_MSG_ACTION);
    m.session_count = 1;
    ENCODE_REFUSES("tensors");
    rlx_message_init(&m, RLX_MSG_UPDATE);
    m.session_count = 1;
    m.flags = RLX_FLAG_EXPLOIT;
    ENCODE_REFUSES("header.flags");
    m.flags = 0;
    m.version = 2;
    ENCODE_REFUSES("header.version");
    rlx_message_init(&m, RLX_MSG_UPDATE);
    m.session_count = 1;
    t = rlx_tensor_of(RLX_FLOAT32, state, 8, shape);
    t.ndim = 9;
    t.shape[0] = 1;
    rlx_message_set(&m, RLX_ROLE_STATE, &t);
    ENCODE_REFUSES("tensor[0].ndim");
    t = rlx_tensor_of(RLX_FLOAT32, NULL, 1, one);
    rlx_message_set(&m, RLX_ROLE_STATE, &t);
    ENCODE_REFUSES("tensor[0].payload");
    rlx_message_init(&m, RLX_MSG_UPDATE);
    m.session_count = 1;
    t = rlx_tensor_of(RLX_FLOAT32, &reward, 1, one);
    rlx_message_set(&m, RLX_ROLE_REWARD, &t);
    CHECK(rlx_encode(&m, &limits, head, RLX_HEADER_SIZE + 39, frames, 16, &count, &err) == RLX_E_PROTOCOL,
          "encode into a head buffer too small: accepted");
    CHECK(rlx_encode(&m, &limits, head, sizeof head, frames, 2, &count, &err) == RLX_E_PROTOCOL,
          "encode into too few frames: accepted");
    CHECK(rlx_encode(&m, &limits, head, sizeof head, frames, 3, &count, &err) == RLX_OK && count == 3,
          "encode of a reward: %s", err.text);
#undef ENCODE_REFUSES
}

/* -- tensor readers ------------------------------------------------------------------------ */

static void readers(const vec_entry *entries, size_t count) {
    size_t i;
    int seen = 0;
    for (i = 0; i < count; i++) {
        const vec_entry *v = &entries[i];
        rlx_tensor t;
        if (strcmp(v->name, "update_float16_state") == 0) {
            t = rlx_tensor_of(v->tensors[0].dtype, v->tensors[0].bytes, v->tensors[0].ndim, v->tensors[0].shape);
            CHECK(rlx_tensor_f64(&t, 0) == 0.5 && rlx_tensor_f64(&t, 1) == -2.0 && rlx_tensor_f64(&t, 2) == 65504.0,
                  "float16 readers");
            CHECK(rlx_tensor_f64(&t, 3) == 0.0 && rlx_tensor_i64(&t, 99) == 0, "reading past the end gives 0");
            seen++;
        } else if (strcmp(v->name, "update_int64_state") == 0) {
            t = rlx_tensor_of(v->tensors[0].dtype, v->tensors[0].bytes, v->tensors[0].ndim, v->tensors[0].shape);
            CHECK(rlx_tensor_i64(&t, 0) == INT64_MAX && rlx_tensor_i64(&t, 1) == INT64_MIN, "int64 readers");
            seen++;
        } else if (strcmp(v->name, "update_small_ints") == 0) {
            t = rlx_tensor_of(v->tensors[1].dtype, v->tensors[1].bytes, v->tensors[1].ndim, v->tensors[1].shape);
            CHECK(rlx_tensor_i64(&t, 0) == -128 && rlx_tensor_i64(&t, 1) == 127, "int8 readers");
            seen++;
        } else if (strcmp(v->name, "action_continuous_batch") == 0) {
            t = rlx_tensor_of(v->tensors[0].dtype, v->tensors[0].bytes, v->tensors[0].ndim, v->tensors[0].shape);
            CHECK(fabs(rlx_tensor_f64(&t, 1) + 0.2) < 1e-7 && rlx_tensor_i64(&t, 3) == 1 && rlx_tensor_i64(&t, 5) == -1,
                  "float32 readers");
            seen++;
        } else if (strcmp(v->name, "update_float64_specials") == 0) {
            t = rlx_tensor_of(v->tensors[0].dtype, v->tensors[0].bytes, v->tensors[0].ndim, v->tensors[0].shape);
            CHECK(isnan(rlx_tensor_f64(&t, 0)) && rlx_tensor_i64(&t, 0) == 0 && rlx_tensor_i64(&t, 1) == INT64_MAX,
                  "nan and inf readers");
            seen++;
        }
    }
    CHECK(seen == 5, "the reader checks found %d of their 5 vectors", seen);
    CHECK(vec_half(1e-7) == 0x0002 && vec_half(-0.0) == 0x8000 && vec_half(1e6) == 0x7C00, "the test's half converter");
}

int main(int argc, char **argv) {
    vec_entry *entries;
    size_t count, i, valid = 0, invalid = 0;
    char err[256];
    if (argc != 2) {
        fprintf(stderr, "usage: %s VECTOR_FILE\n", argv[0]);
        return 2;
    }
    if (vec_load(argv[1], &entries, &count, err, sizeof err) != 0) {
        fprintf(stderr, "%s\n", err);
        return 2;
    }
    for (i = 0; i < count; i++) {
        if (entries[i].valid) {
            valid_vector(&entries[i]);
            resized_frames(&entries[i]);
            frame_counts(&entries[i]);
            mutated_bytes(&entries[i]);
            valid++;
        } else {
            invalid_vector(&entries[i]);
            invalid++;
        }
    }
    targeted();
    encoder_refusals();
    readers(entries, count);
    vec_free(entries, count);
    printf("test_codec: %zu valid vectors encoded and decoded byte for byte, %zu invalid vectors refused naming "
           "their field; %ld malformed variants refused, %ld accepted variants round-tripped; %ld checks, %d failed\n",
           valid, invalid, refused, accepted, checks, failures);
    return failures ? 1 : 0;
}

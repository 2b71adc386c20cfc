/*
 * The client: one DEALER to the broker's frontend, one block of N sessions, the rules of
 * relaax_zmq/client (docs/exchange.md, "Clients"):
 *
 * - a request gets a fresh sequence and waits for the reply with that sequence, discarding
 *   stale ones; with no reply within request_timeout_ms the socket is thrown away (linger 0)
 *   and a new one opened ("Lazy Pirate");
 * - an error reply returns its code (1..9) with the server's text; an error with RESTART, or
 *   UNKNOWN_SESSION, first opens a new block, then returns RLX_RESTART;
 * - a reply with RESTART returns RLX_RESTART; a request without reply resumes the block
 *   (init with its session id), then returns RLX_RESTART;
 * - an init refused BUSY (or unanswered) is retried with jittered exponential backoff until
 *   retry_deadline_ms.
 *
 * Memory: the handle and every buffer are one block laid out at connect; the step path only
 * encodes into and receives into those buffers.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

#include "codec.h"
#include "rlx.h"

#define HANDLE_OPEN 0x524C5831u   /* connected: every call works */
#define HANDLE_FAILED 0x524C5830u /* connect failed: only rlx_last_error and rlx_close */
#define ENDPOINT_MAX 256
#define Z85_KEY 40
#define HWM 10000
#define CLOSE_LINGER_MS 1000
/* the most tensors of a reply the client waits for: error_code, text, versions */
#define REPLY_TENSORS 3
/* versions kept from a ready or error reply */
#define VERSIONS_MAX 256
/* receive slots: every valid message fits, one more tells a longer message apart */
#define RECV_FRAMES (RLX_MAX_VALID_FRAMES + 1)
#define LATENCY_METRIC "action_latency_client_ms"

typedef struct metric {
    char name[RLX_METRIC_NAME_MAX + 1];
    double value;
    uint32_t count; /* values averaged (mean); 0 for a plain scalar */
} metric;

/* A receive buffer: frames of one message, each at an 8-byte aligned offset. */
typedef struct arena {
    uint8_t *data;
    size_t cap;
    rlx_frame frames[RECV_FRAMES];
} arena;

struct rlx_client {
    uint32_t state;
    int own_memory;
    int own_context;
    int curve;
    char endpoint[ENDPOINT_MAX];
    char curve_server[Z85_KEY + 1];
    char curve_public[Z85_KEY + 1];
    char curve_secret[Z85_KEY + 1];
    rlx_options o; /* the options, string pointers cleared */
    void *context;
    void *socket;
    uint64_t rng;
    uint64_t sequence;
    uint64_t session_id; /* 0: no block */
    int exploit;
    double backoff_ms; /* nominal next delay */
    rlx_counters counters;
    arena step;    /* replies to updates (they hold the actions the caller reads) */
    arena control; /* every other reply */
    uint8_t head[RLX_HEADER_SIZE + RLX_DESCRIPTOR_SIZE * 5];
    uint8_t *zero_flags; /* N zero bytes: episode_flags of an update without ends */
    metric *metrics;
    uint32_t metric_count;
    double latency_sum;
    uint32_t latency_count;
    uint8_t *metric_names;  /* the names blob of a metrics message */
    double *metric_values;  /* its values */
    char error[RLX_ERROR_MAX];
};

/* -- small helpers ------------------------------------------------------------------------- */

static size_t align8(size_t n) { return (n + 7u) & ~(size_t)7u; }

static int set_error(rlx_client *c, int status, const char *fmt, ...) RLX_PRINTF(3, 4);
static int set_error(rlx_client *c, int status, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->error, sizeof c->error, fmt, ap);
    va_end(ap);
    return status;
}

static int zmq_failure(rlx_client *c, const char *what) {
    int e = zmq_errno();
    return set_error(c, RLX_E_ZMQ, "%s failed: %s (errno %d)", what, zmq_strerror(e), e);
}

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

static void sleep_ms(double ms) {
    struct timespec ts, left;
    if (ms <= 0) return;
    ts.tv_sec = (time_t)(ms / 1000.0);
    ts.tv_nsec = (long)((ms - (double)ts.tv_sec * 1000.0) * 1e6);
    while (nanosleep(&ts, &left) != 0 && errno == EINTR) ts = left;
}

/* splitmix64: seeds and draws of the per-handle generator */
static uint64_t next_random(uint64_t *state) {
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static double uniform(uint64_t *state, double low, double high) {
    return low + (high - low) * ((double)(next_random(state) >> 11) * (1.0 / 9007199254740992.0));
}

static int little_endian(void) {
    const uint16_t one = 1;
    uint8_t first;
    memcpy(&first, &one, 1);
    return first == 1;
}

/* -- options and layout -------------------------------------------------------------------- */

typedef struct layout {
    size_t step, control, zero_flags, metrics, names, values, total;
} layout;

static size_t step_arena_size(const rlx_options *o) {
    return align8(RLX_HEADER_SIZE) + align8(RLX_DESCRIPTOR_SIZE * REPLY_TENSORS) +
           align8(o->max_action_bytes) + align8(o->max_reply_text) + align8(VERSIONS_MAX);
}

static size_t control_arena_size(const rlx_options *o) {
    return align8(RLX_HEADER_SIZE) + align8(RLX_DESCRIPTOR_SIZE * REPLY_TENSORS) + align8(2) +
           align8(o->max_reply_text) + align8(VERSIONS_MAX);
}

/* Offsets of every buffer after the struct; 0 total when they do not fit a size_t. */
static layout plan(const rlx_options *o) {
    layout l;
    uint64_t at = align8(sizeof(struct rlx_client)), sizes[6];
    size_t *offsets[6];
    int i;
    memset(&l, 0, sizeof l);
    if (o->max_action_bytes > SIZE_MAX / 8 || o->max_reply_text > SIZE_MAX / 8) return l;
    sizes[0] = (uint64_t)step_arena_size(o);
    sizes[1] = (uint64_t)control_arena_size(o);
    sizes[2] = o->session_count;
    sizes[3] = (uint64_t)o->max_metrics * sizeof(metric);
    sizes[4] = ((uint64_t)o->max_metrics + 1) * (RLX_METRIC_NAME_MAX + 1);
    sizes[5] = ((uint64_t)o->max_metrics + 1) * sizeof(double);
    offsets[0] = &l.step;
    offsets[1] = &l.control;
    offsets[2] = &l.zero_flags;
    offsets[3] = &l.metrics;
    offsets[4] = &l.names;
    offsets[5] = &l.values;
    for (i = 0; i < 6; i++) {
        if (sizes[i] > SIZE_MAX / 4 || at > SIZE_MAX / 4) return l;
        *offsets[i] = (size_t)at;
        at += align8((size_t)sizes[i]);
    }
    l.total = (size_t)at;
    return l;
}

static int check_key(rlx_client *c, const char *name, const char *key, char *copy) {
    uint8_t binary[32];
    size_t length = strlen(key);
    if (length != Z85_KEY)
        return set_error(c, RLX_E_CURVE, "%s: expected %d Z85 characters, got %zu", name, Z85_KEY, length);
    if (zmq_z85_decode(binary, key) == NULL)
        return set_error(c, RLX_E_CURVE, "%s: expected Z85 text (zmq_curve_keypair), got characters outside Z85",
                         name);
    memcpy(copy, key, Z85_KEY + 1);
    return RLX_OK;
}

static int check_options(rlx_client *c, const rlx_options *o) {
    const rlx_limits *l = &o->limits;
    int keys;
    if (!little_endian())
        return set_error(c, RLX_E_ARG, "host: expected a little-endian machine, got a big-endian one");
    if (o->endpoint == NULL || o->endpoint[0] == '\0')
        return set_error(c, RLX_E_ARG, "endpoint: expected \"tcp://host:port\", got %s",
                         o->endpoint == NULL ? "NULL" : "\"\"");
    if (strlen(o->endpoint) >= ENDPOINT_MAX)
        return set_error(c, RLX_E_ARG, "endpoint: expected at most %d bytes, got %zu", ENDPOINT_MAX - 1,
                         strlen(o->endpoint));
    if (l->max_elements < 1 || l->max_elements > ((uint64_t)1 << 62))
        return set_error(c, RLX_E_ARG, "limits.max_elements: expected 1..2**62, got %" PRIu64, l->max_elements);
    if (l->max_tensors > 0xFFFF)
        return set_error(c, RLX_E_ARG, "limits.max_tensors: expected 0..65535, got %" PRIu32, l->max_tensors);
    if (l->max_sessions < 1)
        return set_error(c, RLX_E_ARG, "limits.max_sessions: expected at least 1, got 0");
    if (o->session_count < 1 || o->session_count > l->max_sessions)
        return set_error(c, RLX_E_ARG, "session_count: expected 1..%" PRIu32 ", got %" PRIu32, l->max_sessions,
                         o->session_count);
    if (o->max_action_bytes < 1)
        return set_error(c, RLX_E_ARG, "max_action_bytes: expected at least 1, got 0");
    if (o->max_metrics > 4096)
        return set_error(c, RLX_E_ARG, "max_metrics: expected 0..4096, got %" PRIu32, o->max_metrics);
    if (o->request_timeout_ms < 1)
        return set_error(c, RLX_E_ARG, "request_timeout_ms: expected at least 1, got 0");
    if (o->backoff_initial_ms < 1 || o->backoff_max_ms < o->backoff_initial_ms)
        return set_error(c, RLX_E_ARG,
                         "backoff_initial_ms, backoff_max_ms: expected 0 < initial <= max, got %" PRIu32
                         ", %" PRIu32,
                         o->backoff_initial_ms, o->backoff_max_ms);
    if (o->max_message_bytes < -1 || o->max_message_bytes == 0)
        return set_error(c, RLX_E_ARG, "max_message_bytes: expected -1 (no limit) or at least 1, got %" PRId64,
                         o->max_message_bytes);
    keys = (o->curve_server_key != NULL) + (o->curve_public_key != NULL) + (o->curve_secret_key != NULL);
    if (keys != 0 && keys != 3)
        return set_error(c, RLX_E_CURVE,
                         "curve keys: expected the server key and the client's public and secret keys, got "
                         "%d of the 3",
                         keys);
    if (keys == 3) {
        int rc;
        if (!zmq_has("curve"))
            return set_error(c, RLX_E_CURVE, "curve: expected a libzmq with CURVE, got one built without it");
        if ((rc = check_key(c, "curve_server_key", o->curve_server_key, c->curve_server)) != RLX_OK ||
            (rc = check_key(c, "curve_public_key", o->curve_public_key, c->curve_public)) != RLX_OK ||
            (rc = check_key(c, "curve_secret_key", o->curve_secret_key, c->curve_secret)) != RLX_OK)
            return rc;
        c->curve = 1;
    }
    return RLX_OK;
}

void rlx_options_init(rlx_options *o) {
    memset(o, 0, sizeof *o);
    o->session_count = 1;
    o->max_state_bytes = 4096;
    o->max_action_bytes = 1024;
    o->max_reply_text = 1024;
    o->max_metrics = 16;
    o->request_timeout_ms = 10000;
    o->backoff_initial_ms = 100;
    o->backoff_max_ms = 10000;
    o->retry_deadline_ms = 60000;
    o->max_message_bytes = (int64_t)1 << 30;
    o->limits = rlx_default_limits();
}

size_t rlx_client_size(const rlx_options *o) {
    struct rlx_client probe;
    if (o == NULL) return 0;
    memset(&probe, 0, sizeof probe);
    if (check_options(&probe, o) != RLX_OK) return 0;
    memset(probe.curve_secret, 0, sizeof probe.curve_secret);
    return plan(o).total;
}

/* -- the socket ---------------------------------------------------------------------------- */

static int close_socket(rlx_client *c, int linger_ms) {
    if (c->socket != NULL) {
        zmq_setsockopt(c->socket, ZMQ_LINGER, &linger_ms, sizeof linger_ms);
        zmq_close(c->socket);
        c->socket = NULL;
    }
    return RLX_OK;
}

static int open_socket(rlx_client *c) {
    int linger = 0, hwm = HWM;
    int64_t max_message = c->o.max_message_bytes;
    void *s = zmq_socket(c->context, ZMQ_DEALER);
    if (s == NULL) return zmq_failure(c, "zmq_socket(ZMQ_DEALER)");
    if (zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof linger) || zmq_setsockopt(s, ZMQ_SNDHWM, &hwm, sizeof hwm) ||
        zmq_setsockopt(s, ZMQ_RCVHWM, &hwm, sizeof hwm) ||
        zmq_setsockopt(s, ZMQ_MAXMSGSIZE, &max_message, sizeof max_message)) {
        zmq_failure(c, "zmq_setsockopt");
        zmq_close(s);
        return RLX_E_ZMQ;
    }
    if (c->curve) {
        static const char *const names[3] = {"curve_server_key", "curve_public_key", "curve_secret_key"};
        const int options[3] = {ZMQ_CURVE_SERVERKEY, ZMQ_CURVE_PUBLICKEY, ZMQ_CURVE_SECRETKEY};
        const char *keys[3];
        int i;
        keys[0] = c->curve_server;
        keys[1] = c->curve_public;
        keys[2] = c->curve_secret;
        for (i = 0; i < 3; i++) {
            if (zmq_setsockopt(s, options[i], keys[i], Z85_KEY) != 0) {
                int e = zmq_errno();
                zmq_close(s);
                return set_error(c, RLX_E_CURVE, "%s: libzmq refused it: %s", names[i], zmq_strerror(e));
            }
        }
    }
    if (zmq_connect(s, c->endpoint) != 0) {
        int e = zmq_errno();
        zmq_close(s);
        if (e == EINVAL || e == EPROTONOSUPPORT || e == ENOCOMPATPROTO)
            return set_error(c, RLX_E_ARG, "endpoint: expected \"tcp://host:port\", got \"%s\" (%s)", c->endpoint,
                             zmq_strerror(e));
        return set_error(c, RLX_E_ZMQ, "zmq_connect(\"%s\") failed: %s", c->endpoint, zmq_strerror(e));
    }
    c->socket = s;
    return RLX_OK;
}

static int reopen(rlx_client *c) {
    close_socket(c, 0);
    c->counters.reopened++;
    return open_socket(c);
}

/* -- one request --------------------------------------------------------------------------- */

static int encode_error(rlx_client *c, const rlx_codec_error *e, const rlx_message *m) {
    return set_error(c, RLX_E_ARG, "%s message: %s", rlx_type_name(m->type), e->text);
}

/* Send m with a fresh sequence, without waiting (a full queue reopens the socket). */
static int send_message(rlx_client *c, rlx_message *m) {
    rlx_frame frames[2 + RLX_ROLE_COUNT];
    rlx_codec_error e;
    size_t count = 0, i;
    if (c->socket == NULL) {
        int rc = open_socket(c);
        if (rc != RLX_OK) return rc;
    }
    m->sequence = c->sequence++;
    if (rlx_encode(m, &c->o.limits, c->head, sizeof c->head, frames, 2 + RLX_ROLE_COUNT, &count, &e) != RLX_OK)
        return encode_error(c, &e, m);
    for (i = 0; i < count; i++) {
        int flags = ZMQ_DONTWAIT | (i + 1 < count ? ZMQ_SNDMORE : 0);
        const void *data = frames[i].size ? (const void *)frames[i].data : (const void *)c->head;
        while (zmq_send(c->socket, data, frames[i].size, flags) < 0) {
            int err = zmq_errno();
            if (err == EINTR) continue;
            if (err == EAGAIN && i == 0) {
                reopen(c);
                return set_error(c, RLX_E_TIMEOUT, "no room to send %s: the socket's queue is full (reopened)",
                                 rlx_type_name(m->type));
            }
            return zmq_failure(c, "zmq_send");
        }
    }
    return RLX_OK;
}

/* Receive one whole message into a; RLX_E_LIMIT (drained) when it does not fit. */
static int receive(rlx_client *c, arena *a, size_t *nframes) {
    size_t used = 0, count = 0, total = 0;
    int overflow = 0, more = 1;
    size_t more_size = sizeof more;
    while (more) {
        size_t room = used < a->cap ? a->cap - used : 0;
        int got = zmq_recv(c->socket, a->data + used, room, 0);
        if (got < 0) {
            if (zmq_errno() == EINTR) continue; /* the same frame again */
            return zmq_failure(c, "zmq_recv");
        }
        total += (size_t)got;
        if (count < RECV_FRAMES && (size_t)got <= room) {
            a->frames[count].data = a->data + used;
            a->frames[count].size = (size_t)got;
            used = align8(used + (size_t)got);
        } else {
            overflow = 1;
        }
        count++;
        more = 0;
        if (zmq_getsockopt(c->socket, ZMQ_RCVMORE, &more, &more_size) != 0) return zmq_failure(c, "zmq_getsockopt");
    }
    if (count > RECV_FRAMES - 1)
        return set_error(c, RLX_E_PROTOCOL, "reply: frames: expected at most %d frames, got %zu frames",
                         RLX_MAX_VALID_FRAMES, count);
    if (overflow)
        return set_error(c, RLX_E_LIMIT,
                         "reply: %zu bytes in %zu frames do not fit the receive buffer of %zu bytes "
                         "(max_action_bytes %zu, max_reply_text %zu)",
                         total, count, a->cap, c->o.max_action_bytes, c->o.max_reply_text);
    *nframes = count;
    return RLX_OK;
}

/* Send m and wait for its reply in a (docs at the top); RLX_E_TIMEOUT reopens the socket. */
static int request(rlx_client *c, rlx_message *m, arena *a, rlx_message *reply) {
    double deadline;
    uint64_t sequence;
    int rc = send_message(c, m);
    if (rc != RLX_OK) return rc;
    sequence = m->sequence;
    deadline = now_ms() + c->o.request_timeout_ms;
    for (;;) {
        zmq_pollitem_t item;
        double left = deadline - now_ms();
        size_t nframes = 0;
        rlx_codec_error e;
        int ready;
        if (left <= 0) {
            reopen(c);
            return set_error(c, RLX_E_TIMEOUT, "no reply to %s within %g s (socket reopened)", rlx_type_name(m->type),
                             c->o.request_timeout_ms / 1000.0);
        }
        item.socket = c->socket;
        item.fd = 0;
        item.events = ZMQ_POLLIN;
        item.revents = 0;
        ready = zmq_poll(&item, 1, (long)left + 1);
        if (ready < 0) {
            if (zmq_errno() == EINTR) continue;
            return zmq_failure(c, "zmq_poll");
        }
        if (ready == 0) continue;
        rc = receive(c, a, &nframes);
        if (rc != RLX_OK) return rc;
        if (rlx_decode(a->frames, nframes, &c->o.limits, reply, &e) != RLX_OK)
            return set_error(c, RLX_E_PROTOCOL, "reply to %s: %s", rlx_type_name(m->type), e.text);
        if (reply->sequence == sequence) {
            c->counters.requests++;
            return RLX_OK;
        }
        c->counters.stale++;
    }
}

/* Send without waiting for the reply; failures are kept in the error text only. */
static void send_quietly(rlx_client *c, rlx_message *m) {
    char kept[RLX_ERROR_MAX];
    memcpy(kept, c->error, sizeof kept);
    if (send_message(c, m) != RLX_OK) return; /* the text says why; nothing to retry */
    memcpy(c->error, kept, sizeof kept);
}

/* -- error replies ------------------------------------------------------------------------- */

static const char *const ERROR_NAMES[10] = {"",          "MALFORMED", "UNSUPPORTED_VERSION", "UNKNOWN_TYPE",
                                            "TOO_LARGE", "UNKNOWN_SESSION", "BUSY", "AUTH",
                                            "INTERNAL",  "SHUTTING_DOWN"};

/* The reply's code; the error text becomes "NAME: server text". */
static unsigned read_error(rlx_client *c, const rlx_message *reply) {
    const rlx_tensor *code = rlx_message_get(reply, RLX_ROLE_ERROR_CODE);
    const rlx_tensor *text = rlx_message_get(reply, RLX_ROLE_TEXT);
    const uint8_t *bytes = (const uint8_t *)code->data;
    unsigned value = (unsigned)bytes[0] | ((unsigned)bytes[1] << 8);
    size_t used, i, length = text != NULL ? text->nbytes : 0;
    if (value >= 1 && value <= 9) used = (size_t)snprintf(c->error, sizeof c->error, "%s", ERROR_NAMES[value]);
    else used = (size_t)snprintf(c->error, sizeof c->error, "error %u", value);
    if (length && used + 3 < sizeof c->error) {
        c->error[used++] = ':';
        c->error[used++] = ' ';
        for (i = 0; i < length && used + 1 < sizeof c->error; i++) {
            uint8_t ch = ((const uint8_t *)text->data)[i];
            c->error[used++] = (char)(ch < 0x20 || ch == 0x7F ? '?' : ch);
        }
        c->error[used] = '\0';
    }
    return value;
}

static int server_status(unsigned code) { return code >= 1 && code <= 9 ? (int)code : RLX_E_SERVER; }

/* -- blocks -------------------------------------------------------------------------------- */

/* init (new block for 0, else resume), retrying BUSY and timeouts until the deadline. */
static int open_block(rlx_client *c, uint64_t session_id) {
    double deadline = now_ms() + c->o.retry_deadline_ms;
    c->backoff_ms = c->o.backoff_initial_ms;
    for (;;) {
        rlx_message init, reply;
        int rc, failure;
        double left, delay;
        rlx_message_init(&init, RLX_MSG_INIT);
        init.flags = c->exploit ? RLX_FLAG_EXPLOIT : 0;
        init.session_id = session_id;
        init.session_count = c->o.session_count;
        rc = request(c, &init, &c->control, &reply);
        if (rc == RLX_OK) {
            if (reply.type == RLX_MSG_READY) {
                if (reply.session_count != c->o.session_count || reply.session_id == 0)
                    return set_error(c, RLX_E_PROTOCOL,
                                     "ready: expected a block of %" PRIu32 " sessions, got %" PRIu64 "x%" PRIu32,
                                     c->o.session_count, reply.session_id, reply.session_count);
                c->session_id = reply.session_id;
                return RLX_OK;
            }
            if (reply.type != RLX_MSG_ERROR)
                return set_error(c, RLX_E_PROTOCOL, "reply.type: expected ready or error, got %s",
                                 rlx_type_name(reply.type));
            failure = server_status(read_error(c, &reply));
            if (failure != RLX_E_BUSY) return failure;
        } else if (rc == RLX_E_TIMEOUT) {
            failure = rc;
        } else {
            return rc;
        }
        left = deadline - now_ms();
        if (left <= 0) return failure; /* the text is the last refusal's */
        delay = uniform(&c->rng, c->backoff_ms / 2.0, c->backoff_ms);
        c->backoff_ms = c->backoff_ms * 2.0 > c->o.backoff_max_ms ? c->o.backoff_max_ms : c->backoff_ms * 2.0;
        c->counters.retries++;
        sleep_ms(delay < left ? delay : left);
    }
}

/* Resume the block (or open a new one), then RLX_RESTART with reason as the text. */
static int restart(rlx_client *c, int resume) {
    char reason[RLX_ERROR_MAX];
    uint64_t old = c->session_id;
    int rc;
    memcpy(reason, c->error, sizeof reason);
    c->session_id = 0;
    rc = open_block(c, resume ? old : 0);
    if (rc != RLX_OK) return rc;
    c->counters.restarts++;
    return set_error(c, RLX_RESTART, "%s; %s", reason, resume ? "block resumed" : "new block opened");
}

/* One request of the block with the error/restart/timeout rules; reply lands in a. */
static int call(rlx_client *c, rlx_message *m, uint8_t expect, arena *a, rlx_message *reply) {
    int rc;
    if (c->session_id == 0) {
        rc = open_block(c, 0);
        if (rc != RLX_OK) return rc;
    }
    m->session_id = c->session_id;
    m->session_count = c->o.session_count;
    rc = request(c, m, a, reply);
    if (rc == RLX_E_TIMEOUT) return restart(c, 1);
    if (rc != RLX_OK) return rc;
    if (reply->type == RLX_MSG_ERROR) {
        unsigned code = read_error(c, reply);
        if (code == RLX_E_UNKNOWN_SESSION || (reply->flags & RLX_FLAG_RESTART)) return restart(c, 0);
        return server_status(code);
    }
    if (reply->flags & RLX_FLAG_RESTART) {
        c->counters.restarts++;
        return set_error(c, RLX_RESTART, "the server restarted the block's episodes");
    }
    if (reply->type != expect)
        return set_error(c, RLX_E_PROTOCOL, "reply.type: expected %s, got %s", rlx_type_name(expect),
                         rlx_type_name(reply->type));
    return RLX_OK;
}

/* -- metrics ------------------------------------------------------------------------------- */

static int add_metric(rlx_client *c, const char *name, double value, int mean) {
    size_t length;
    uint32_t i;
    metric *slot = NULL;
    if (name == NULL) return set_error(c, RLX_E_ARG, "metric name: expected a name, got NULL");
    length = strlen(name);
    if (length == 0 || length > RLX_METRIC_NAME_MAX || strchr(name, '\n') != NULL)
        return set_error(c, RLX_E_ARG, "metric name: expected 1..%d bytes without newlines, got %zu bytes%s",
                         RLX_METRIC_NAME_MAX, length, strchr(name, '\n') ? " with a newline" : "");
    if (strcmp(name, LATENCY_METRIC) == 0)
        return set_error(c, RLX_E_ARG, "metric name: %s is recorded by the client itself", LATENCY_METRIC);
    for (i = 0; i < c->metric_count; i++) {
        if (strcmp(c->metrics[i].name, name) == 0) {
            slot = &c->metrics[i];
            break;
        }
    }
    if (slot == NULL) {
        if (c->metric_count >= c->o.max_metrics)
            return set_error(c, RLX_E_LIMIT, "metrics: expected at most max_metrics %" PRIu32 " names, got one more (%s)",
                             c->o.max_metrics, name);
        slot = &c->metrics[c->metric_count++];
        memcpy(slot->name, name, length + 1);
        slot->value = 0.0;
        slot->count = 0;
    }
    if (mean) {
        if (slot->count == 0) slot->value = 0.0;
        slot->value += value;
        slot->count++;
    } else {
        slot->value = value;
        slot->count = 0;
    }
    return RLX_OK;
}

/* Build the metrics message of everything buffered and empty the buffer; 0 when nothing waits. */
static int take_metrics(rlx_client *c, rlx_message *m) {
    size_t used = 0;
    uint32_t i, count = 0;
    uint32_t shape[1];
    rlx_tensor t;
    if (c->metric_count == 0 && c->latency_count == 0) return 0;
    for (i = 0; i < c->metric_count + (c->latency_count ? 1u : 0u); i++) {
        const char *name;
        double value;
        size_t length;
        if (i < c->metric_count) {
            name = c->metrics[i].name;
            value = c->metrics[i].count ? c->metrics[i].value / c->metrics[i].count : c->metrics[i].value;
        } else {
            name = LATENCY_METRIC;
            value = c->latency_sum / c->latency_count;
        }
        length = strlen(name);
        if (used) c->metric_names[used++] = '\n';
        memcpy(c->metric_names + used, name, length);
        used += length;
        c->metric_values[count++] = value;
    }
    c->metric_count = 0;
    c->latency_count = 0;
    c->latency_sum = 0.0;
    rlx_message_init(m, RLX_MSG_METRICS);
    shape[0] = (uint32_t)used;
    t = rlx_tensor_of(RLX_UINT8, c->metric_names, 1, shape);
    rlx_message_set(m, RLX_ROLE_METRIC_NAMES, &t);
    shape[0] = count;
    t = rlx_tensor_of(RLX_FLOAT64, c->metric_values, 1, shape);
    rlx_message_set(m, RLX_ROLE_METRIC_VALUES, &t);
    return 1;
}

/* -- the public API ------------------------------------------------------------------------ */

static int usable(rlx_client *c) {
    if (c == NULL) return RLX_E_ARG;
    if (c->state != HANDLE_OPEN)
        return set_error(c, RLX_E_STATE, "handle: expected a connected handle, got a closed one or one whose connect failed");
    return RLX_OK;
}

int rlx_connect_in(void *memory, size_t size, const rlx_options *o, rlx_client **out) {
    rlx_client *c = (rlx_client *)memory;
    layout l;
    uint8_t *base = (uint8_t *)memory;
    int rc;
    if (out == NULL) return RLX_E_ARG;
    *out = NULL;
    if (memory == NULL || ((uintptr_t)memory & 7u) != 0 || size < sizeof(struct rlx_client)) return RLX_E_ARG;
    memset(c, 0, sizeof *c);
    c->state = HANDLE_FAILED;
    *out = c;
    if (o == NULL) return set_error(c, RLX_E_ARG, "options: expected rlx_options, got NULL");
    rc = check_options(c, o);
    if (rc != RLX_OK) return rc;
    l = plan(o);
    if (l.total == 0) return set_error(c, RLX_E_ARG, "options: the buffers they ask for do not fit in memory");
    if (size < l.total)
        return set_error(c, RLX_E_ARG, "memory: expected at least %zu bytes (rlx_client_size), got %zu", l.total, size);
    c->o = *o;
    c->o.endpoint = NULL;
    c->o.curve_server_key = c->o.curve_public_key = c->o.curve_secret_key = NULL;
    c->o.zmq_context = NULL;
    memcpy(c->endpoint, o->endpoint, strlen(o->endpoint) + 1);
    c->step.data = base + l.step;
    c->step.cap = step_arena_size(o);
    c->control.data = base + l.control;
    c->control.cap = control_arena_size(o);
    c->zero_flags = base + l.zero_flags;
    memset(c->zero_flags, 0, o->session_count);
    c->metrics = (metric *)(void *)(base + l.metrics);
    c->metric_names = base + l.names;
    c->metric_values = (double *)(void *)(base + l.values);
    c->rng = o->seed ? o->seed
                     : (uint64_t)(uintptr_t)c ^ ((uint64_t)time(NULL) << 20) ^ (uint64_t)(now_ms() * 1000.0);
    c->sequence = 1 + (next_random(&c->rng) & 0xFFFFFFFEull);
    if (o->zmq_context != NULL) {
        c->context = o->zmq_context;
    } else {
        c->context = zmq_ctx_new();
        if (c->context == NULL) return zmq_failure(c, "zmq_ctx_new");
        c->own_context = 1;
    }
    rc = open_socket(c);
    if (rc != RLX_OK) return rc;
    c->state = HANDLE_OPEN;
    return RLX_OK;
}

int rlx_connect(const rlx_options *o, rlx_client **out) {
    size_t need, size;
    void *memory;
    int rc;
    if (out == NULL) return RLX_E_ARG;
    *out = NULL;
    need = rlx_client_size(o);
    size = need ? need : sizeof(struct rlx_client); /* room for the error text */
    memory = malloc(size);
    if (memory == NULL) return RLX_E_NOMEM;
    rc = rlx_connect_in(memory, size, o, out);
    if (*out != NULL) (*out)->own_memory = 1;
    else free(memory);
    return rc;
}

int rlx_init(rlx_client *c, int exploit) {
    int rc = usable(c);
    if (rc != RLX_OK) return rc;
    if (c->session_id != 0) {
        rlx_message close;
        rlx_message_init(&close, RLX_MSG_CLOSE);
        close.session_id = c->session_id;
        close.session_count = c->o.session_count;
        send_quietly(c, &close);
        c->session_id = 0;
    }
    c->exploit = exploit != 0;
    return open_block(c, 0);
}

static int check_state(rlx_client *c, const rlx_tensor *state, rlx_tensor *out) {
    char shape[64];
    uint64_t bytes, elements;
    unsigned d;
    size_t used = 0;
    if (state->dtype < 1 || state->dtype > 12)
        return set_error(c, RLX_E_ARG, "state: expected a dtype 1..12 (rlx_dtype), got %u", state->dtype);
    if (state->ndim < 1 || state->ndim > RLX_MAX_NDIM || state->shape[0] != c->o.session_count) {
        for (d = 0; d < state->ndim && d < RLX_MAX_NDIM && used + 12 < sizeof shape; d++)
            used += (size_t)snprintf(shape + used, sizeof shape - used, d ? ", %" PRIu32 : "%" PRIu32, state->shape[d]);
        shape[used] = '\0';
        return set_error(c, RLX_E_ARG, "state: expected shape (%" PRIu32 ", ...) with at most %d dimensions, got (%s)",
                         c->o.session_count, RLX_MAX_NDIM, shape);
    }
    *out = rlx_tensor_of(state->dtype, state->data, state->ndim, state->shape);
    elements = rlx_tensor_elements(out);
    bytes = elements > UINT64_MAX / 8 ? UINT64_MAX : elements * rlx_dtype_size(state->dtype);
    if (bytes > c->o.max_state_bytes)
        return set_error(c, RLX_E_LIMIT, "state: expected at most max_state_bytes %zu bytes, got %" PRIu64 " bytes",
                         c->o.max_state_bytes, bytes);
    if (bytes > 0 && state->data == NULL) return set_error(c, RLX_E_ARG, "state: expected data, got NULL");
    return RLX_OK;
}

static int update(rlx_client *c, const float *reward, const rlx_tensor *state, unsigned flags,
                  const uint8_t *episode_flags, int per_session, rlx_tensor *action) {
    rlx_message m, reply;
    rlx_tensor t;
    uint32_t n = c->o.session_count, shape[1];
    double started;
    int rc, ended = flags != 0;
    uint32_t i;
    if (action == NULL) return set_error(c, RLX_E_ARG, "action: expected a tensor to fill, got NULL");
    rlx_message_init(&m, RLX_MSG_UPDATE);
    m.flags = (uint16_t)flags;
    shape[0] = n;
    if (reward != NULL) {
        t = rlx_tensor_of(RLX_FLOAT32, reward, 1, shape);
        rlx_message_set(&m, RLX_ROLE_REWARD, &t);
    }
    if (state != NULL) {
        rc = check_state(c, state, &t);
        if (rc != RLX_OK) return rc;
        rlx_message_set(&m, RLX_ROLE_STATE, &t);
    }
    if (per_session) {
        const uint8_t *values = episode_flags != NULL ? episode_flags : c->zero_flags;
        for (i = 0; i < n; i++) {
            if (values[i] & ~3u)
                return set_error(c, RLX_E_ARG, "episode_flags[%" PRIu32 "]: expected bits 0x1|0x2, got 0x%x", i,
                                 values[i]);
            ended |= values[i] != 0;
        }
        t = rlx_tensor_of(RLX_UINT8, values, 1, shape);
        rlx_message_set(&m, RLX_ROLE_EPISODE_FLAGS, &t);
    }
    started = now_ms();
    rc = call(c, &m, RLX_MSG_ACTION, &c->step, &reply);
    if (rc != RLX_OK) return rc;
    c->latency_sum += now_ms() - started;
    c->latency_count++;
    *action = reply.roles[RLX_ROLE_ACTION];
    if (action->nbytes > c->o.max_action_bytes)
        return set_error(c, RLX_E_LIMIT, "action: expected at most max_action_bytes %zu bytes, got %zu",
                         c->o.max_action_bytes, action->nbytes);
    return ended ? rlx_flush_metrics(c) : RLX_OK;
}

int rlx_update(rlx_client *c, const float *reward, const rlx_tensor *state, int terminal, int truncated,
               rlx_tensor *action) {
    unsigned flags = (terminal ? RLX_FLAG_TERMINAL : 0u) | (truncated ? RLX_FLAG_TRUNCATED : 0u);
    int rc = usable(c);
    if (rc != RLX_OK) return rc;
    return update(c, reward, state, flags, NULL, 0, action);
}

int rlx_update_block(rlx_client *c, const float *rewards, const rlx_tensor *states, const uint8_t *episode_flags,
                     rlx_tensor *actions) {
    int rc = usable(c);
    if (rc != RLX_OK) return rc;
    return update(c, rewards, states, 0, episode_flags, 1, actions);
}

int rlx_flush_metrics(rlx_client *c) {
    rlx_message m, reply;
    int rc = usable(c);
    if (rc != RLX_OK) return rc;
    if (!take_metrics(c, &m)) return RLX_OK;
    return call(c, &m, RLX_MSG_DONE, &c->control, &reply);
}

int rlx_reset(rlx_client *c) {
    rlx_message m, reply;
    int rc = rlx_flush_metrics(c);
    if (rc == RLX_RESTART) return RLX_OK; /* the episodes end either way */
    if (rc != RLX_OK) return rc;
    rlx_message_init(&m, RLX_MSG_RESET);
    rc = call(c, &m, RLX_MSG_DONE, &c->control, &reply);
    return rc == RLX_RESTART ? RLX_OK : rc;
}

int rlx_heartbeat(rlx_client *c) {
    rlx_message m, reply;
    int rc = usable(c);
    if (rc != RLX_OK) return rc;
    rlx_message_init(&m, RLX_MSG_HEARTBEAT);
    return call(c, &m, RLX_MSG_HEARTBEAT, &c->control, &reply);
}

int rlx_metric(rlx_client *c, const char *name, double value) {
    int rc = usable(c);
    return rc != RLX_OK ? rc : add_metric(c, name, value, 0);
}

int rlx_metric_mean(rlx_client *c, const char *name, double value) {
    int rc = usable(c);
    return rc != RLX_OK ? rc : add_metric(c, name, value, 1);
}

uint64_t rlx_session_id(const rlx_client *c) { return c != NULL ? c->session_id : 0; }

rlx_counters rlx_get_counters(const rlx_client *c) {
    rlx_counters none;
    if (c != NULL) return c->counters;
    memset(&none, 0, sizeof none);
    return none;
}

void *rlx_socket(const rlx_client *c) { return c != NULL ? c->socket : NULL; }

int rlx_close(rlx_client *c) {
    volatile char *secret;
    size_t i;
    if (c == NULL) return RLX_OK;
    if (c->state == HANDLE_OPEN && c->socket != NULL && c->session_id != 0) {
        rlx_message m;
        if (take_metrics(c, &m)) {
            m.session_id = c->session_id;
            m.session_count = c->o.session_count;
            send_quietly(c, &m);
        }
        rlx_message_init(&m, RLX_MSG_CLOSE);
        m.session_id = c->session_id;
        m.session_count = c->o.session_count;
        send_quietly(c, &m);
    }
    c->session_id = 0;
    close_socket(c, CLOSE_LINGER_MS);
    if (c->own_context && c->context != NULL) {
        while (zmq_ctx_term(c->context) != 0 && zmq_errno() == EINTR) {
        }
    }
    c->context = NULL;
    secret = c->curve_secret;
    for (i = 0; i < sizeof c->curve_secret; i++) secret[i] = 0;
    c->state = 0;
    if (c->own_memory) free(c);
    return RLX_OK;
}

const char *rlx_last_error(const rlx_client *c) {
    return c != NULL ? c->error : "no client handle (rlx_connect got NULL arguments or could not allocate)";
}

const char *rlx_strerror(int status) {
    switch (status) {
    case RLX_OK: return "RLX_OK";
    case RLX_E_MALFORMED: return "RLX_E_MALFORMED";
    case RLX_E_UNSUPPORTED_VERSION: return "RLX_E_UNSUPPORTED_VERSION";
    case RLX_E_UNKNOWN_TYPE: return "RLX_E_UNKNOWN_TYPE";
    case RLX_E_TOO_LARGE: return "RLX_E_TOO_LARGE";
    case RLX_E_UNKNOWN_SESSION: return "RLX_E_UNKNOWN_SESSION";
    case RLX_E_BUSY: return "RLX_E_BUSY";
    case RLX_E_AUTH: return "RLX_E_AUTH";
    case RLX_E_INTERNAL: return "RLX_E_INTERNAL";
    case RLX_E_SHUTTING_DOWN: return "RLX_E_SHUTTING_DOWN";
    case RLX_E_SERVER: return "RLX_E_SERVER";
    case RLX_RESTART: return "RLX_RESTART";
    case RLX_E_TIMEOUT: return "RLX_E_TIMEOUT";
    case RLX_E_PROTOCOL: return "RLX_E_PROTOCOL";
    case RLX_E_LIMIT: return "RLX_E_LIMIT";
    case RLX_E_ARG: return "RLX_E_ARG";
    case RLX_E_CURVE: return "RLX_E_CURVE";
    case RLX_E_ZMQ: return "RLX_E_ZMQ";
    case RLX_E_STATE: return "RLX_E_STATE";
    case RLX_E_NOMEM: return "RLX_E_NOMEM";
    default: return "unknown status";
    }
}

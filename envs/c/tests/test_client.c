/*
 * The client against a fake RLX server (a ROUTER in a thread of this program, over tcp
 * loopback): options, CURVE keys, the session flow, blocks, metrics, and the rules of
 * relaax_zmq/client for BUSY, RESTART, UNKNOWN_SESSION, timeouts, stale and malformed replies.
 * The program is linked with --wrap=malloc/calloc/realloc: the library's allocations are
 * counted, and the step path must make none.
 */
#define _POSIX_C_SOURCE 200809L

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

#include "codec.h"
#include "rlx.h"

/* -- allocation counting ------------------------------------------------------------------- */

void *__real_malloc(size_t size);
void *__real_calloc(size_t count, size_t size);
void *__real_realloc(void *p, size_t size);
void *__wrap_malloc(size_t size);
void *__wrap_calloc(size_t count, size_t size);
void *__wrap_realloc(void *p, size_t size);
static volatile long allocations = 0;
void *__wrap_malloc(size_t size) {
    allocations++;
    return __real_malloc(size);
}
void *__wrap_calloc(size_t count, size_t size) {
    allocations++;
    return __real_calloc(count, size);
}
void *__wrap_realloc(void *p, size_t size) {
    allocations++;
    return __real_realloc(p, size);
}

/* -- checks -------------------------------------------------------------------------------- */

static int failures = 0, checks = 0;
#define CHECK(cond, ...)                                         \
    do {                                                         \
        checks++;                                                \
        if (!(cond)) {                                           \
            failures++;                                          \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__); \
            fprintf(stderr, __VA_ARGS__);                        \
            fputc('\n', stderr);                                 \
        }                                                        \
    } while (0)

static void sleep_ms(long ms) {
    struct timespec ts;
    ts.tv_sec = ms / 1000;
    ts.tv_nsec = (ms % 1000) * 1000000L;
    nanosleep(&ts, NULL);
}

/* -- the fake server ----------------------------------------------------------------------- */

typedef struct logged {
    uint8_t type;
    uint16_t flags;
    uint64_t sequence, session_id;
    uint32_t session_count;
    int has_reward, has_state, has_flags;
    float reward0;
    size_t state_bytes;
    uint8_t episode_flags[8];
    char names[256];
    double values[8];
    unsigned nvalues;
} logged;

#define MAX_LOG 4096
#define MAX_FRAMES 16
#define FRAME_BYTES 4096

typedef struct server {
    void *context, *socket;
    char endpoint[64];
    pthread_t thread;
    pthread_mutex_t lock;
    int stop;
    /* behaviours, each a count of requests it applies to */
    int busy_inits, drop_updates, restart_updates, unknown_updates, malformed_updates, stale_updates,
        bad_magic_updates, done_for_updates;
    int big_action_updates;
    uint32_t big_action_width;
    uint64_t next_id;
    uint64_t block_ids[64];
    uint32_t block_counts[64];
    int nblocks;
    logged log[MAX_LOG];
    int nlog;
    uint8_t frames[MAX_FRAMES][FRAME_BYTES];
    int64_t actions[FRAME_BYTES];
} server;

static server S;

static int take(int *counter) {
    if (*counter > 0) {
        (*counter)--;
        return 1;
    }
    return 0;
}

static void send_frames(server *s, const uint8_t *id, size_t idlen, const rlx_frame *frames, size_t count) {
    size_t i;
    zmq_send(s->socket, id, idlen, ZMQ_SNDMORE);
    for (i = 0; i < count; i++)
        zmq_send(s->socket, frames[i].size ? (const void *)frames[i].data : (const void *)id, frames[i].size,
                 i + 1 < count ? ZMQ_SNDMORE : 0);
}

static void reply(server *s, const uint8_t *id, size_t idlen, rlx_message *m) {
    uint8_t head[RLX_HEADER_SIZE + RLX_DESCRIPTOR_SIZE * 4];
    rlx_frame frames[8];
    rlx_codec_error err;
    rlx_limits limits = rlx_default_limits();
    size_t count;
    if (rlx_encode(m, &limits, head, sizeof head, frames, 8, &count, &err) != RLX_OK) {
        fprintf(stderr, "fake server: cannot encode its reply: %s\n", err.text);
        abort();
    }
    send_frames(s, id, idlen, frames, count);
}

static void simple(server *s, const uint8_t *id, size_t idlen, uint8_t type, uint64_t seq, uint64_t sid, uint32_t n,
                   uint16_t flags) {
    rlx_message m;
    rlx_message_init(&m, type);
    m.sequence = seq;
    m.session_id = sid;
    m.session_count = n;
    m.flags = flags;
    reply(s, id, idlen, &m);
}

static void error_reply(server *s, const uint8_t *id, size_t idlen, uint64_t seq, uint16_t code, const char *text,
                        uint16_t flags) {
    rlx_message m;
    rlx_tensor t;
    uint8_t code_bytes[2];
    uint32_t length[1];
    code_bytes[0] = (uint8_t)code;
    code_bytes[1] = (uint8_t)(code >> 8);
    rlx_message_init(&m, RLX_MSG_ERROR);
    m.sequence = seq;
    m.flags = flags;
    t = rlx_tensor_of(RLX_UINT16, code_bytes, 0, NULL);
    rlx_message_set(&m, RLX_ROLE_ERROR_CODE, &t);
    length[0] = (uint32_t)strlen(text);
    t = rlx_tensor_of(RLX_UINT8, text, 1, length);
    rlx_message_set(&m, RLX_ROLE_TEXT, &t);
    reply(s, id, idlen, &m);
}

static void action_reply(server *s, const uint8_t *id, size_t idlen, const rlx_message *req, uint32_t width,
                         uint16_t flags) {
    rlx_message m;
    rlx_tensor t;
    uint32_t shape[2], i;
    shape[0] = req->session_count;
    shape[1] = width;
    for (i = 0; i < req->session_count * width && i < FRAME_BYTES; i++) s->actions[i] = (int64_t)(i / width);
    rlx_message_init(&m, RLX_MSG_ACTION);
    m.sequence = req->sequence;
    m.session_id = req->session_id;
    m.session_count = req->session_count;
    m.flags = flags;
    t = rlx_tensor_of(RLX_INT64, s->actions, width > 1 ? 2 : 1, shape);
    rlx_message_set(&m, RLX_ROLE_ACTION, &t);
    reply(s, id, idlen, &m);
}

static void record(server *s, const rlx_message *m) {
    logged *l;
    const rlx_tensor *t;
    if (s->nlog >= MAX_LOG) return;
    l = &s->log[s->nlog++];
    memset(l, 0, sizeof *l);
    l->type = m->type;
    l->flags = m->flags;
    l->sequence = m->sequence;
    l->session_id = m->session_id;
    l->session_count = m->session_count;
    if ((t = rlx_message_get(m, RLX_ROLE_REWARD)) != NULL) {
        l->has_reward = 1;
        memcpy(&l->reward0, t->data, 4);
    }
    if ((t = rlx_message_get(m, RLX_ROLE_STATE)) != NULL) {
        l->has_state = 1;
        l->state_bytes = t->nbytes;
    }
    if ((t = rlx_message_get(m, RLX_ROLE_EPISODE_FLAGS)) != NULL) {
        l->has_flags = 1;
        memcpy(l->episode_flags, t->data, t->nbytes < 8 ? t->nbytes : 8);
    }
    if ((t = rlx_message_get(m, RLX_ROLE_METRIC_NAMES)) != NULL && t->nbytes < sizeof l->names)
        memcpy(l->names, t->data, t->nbytes);
    if ((t = rlx_message_get(m, RLX_ROLE_METRIC_VALUES)) != NULL) {
        l->nvalues = (unsigned)(t->nbytes / 8);
        memcpy(l->values, t->data, (l->nvalues < 8 ? l->nvalues : 8) * 8);
    }
}

static void handle(server *s, const uint8_t *id, size_t idlen, const rlx_message *m) {
    int i;
    switch (m->type) {
    case RLX_MSG_INIT: {
        uint64_t sid = 0;
        if (take(&s->busy_inits)) {
            error_reply(s, id, idlen, m->sequence, RLX_E_BUSY, "no worker capacity; retry", 0);
            return;
        }
        for (i = 0; i < s->nblocks; i++)
            if (m->session_id && s->block_ids[i] == m->session_id && s->block_counts[i] == m->session_count)
                sid = m->session_id;
        if (sid == 0 && s->nblocks < 64) {
            sid = s->next_id;
            s->next_id += 1000;
            s->block_ids[s->nblocks] = sid;
            s->block_counts[s->nblocks++] = m->session_count;
        }
        simple(s, id, idlen, RLX_MSG_READY, m->sequence, sid, m->session_count, m->flags & RLX_FLAG_EXPLOIT);
        return;
    }
    case RLX_MSG_UPDATE:
        if (take(&s->drop_updates)) return;
        if (take(&s->restart_updates)) {
            action_reply(s, id, idlen, m, 1, RLX_FLAG_RESTART);
        } else if (take(&s->unknown_updates)) {
            error_reply(s, id, idlen, m->sequence, RLX_E_UNKNOWN_SESSION, "no such session", 0);
        } else if (take(&s->malformed_updates)) {
            error_reply(s, id, idlen, m->sequence, RLX_E_MALFORMED, "state: expected float32, got int8", 0);
        } else if (take(&s->bad_magic_updates)) {
            uint8_t head[RLX_HEADER_SIZE];
            rlx_frame f;
            memset(head, 0, sizeof head);
            memcpy(head, "RLXQ", 4);
            f.data = head;
            f.size = sizeof head;
            send_frames(s, id, idlen, &f, 1);
        } else if (take(&s->done_for_updates)) {
            simple(s, id, idlen, RLX_MSG_DONE, m->sequence, m->session_id, m->session_count, 0);
        } else if (take(&s->big_action_updates)) {
            action_reply(s, id, idlen, m, s->big_action_width, 0);
        } else {
            if (take(&s->stale_updates)) {
                rlx_message stale = *m;
                stale.sequence += 1000;
                action_reply(s, id, idlen, &stale, 1, 0);
            }
            action_reply(s, id, idlen, m, 1, 0);
        }
        return;
    case RLX_MSG_RESET:
    case RLX_MSG_METRICS:
    case RLX_MSG_CLOSE:
        simple(s, id, idlen, RLX_MSG_DONE, m->sequence, m->session_id, m->session_count, 0);
        return;
    case RLX_MSG_HEARTBEAT:
        simple(s, id, idlen, RLX_MSG_HEARTBEAT, m->sequence, 0, 0, 0);
        return;
    default:
        error_reply(s, id, idlen, m->sequence, RLX_E_UNKNOWN_TYPE, "unknown type", 0);
    }
}

static void *serve(void *arg) {
    server *s = (server *)arg;
    uint8_t id[256];
    for (;;) {
        zmq_pollitem_t item;
        rlx_frame frames[MAX_FRAMES];
        rlx_message m;
        rlx_codec_error err;
        rlx_limits limits = rlx_default_limits();
        int idlen, more = 1, stop;
        size_t count = 0, more_size = sizeof more;
        pthread_mutex_lock(&s->lock);
        stop = s->stop;
        pthread_mutex_unlock(&s->lock);
        if (stop) break;
        item.socket = s->socket;
        item.fd = 0;
        item.events = ZMQ_POLLIN;
        item.revents = 0;
        if (zmq_poll(&item, 1, 20) <= 0) continue;
        idlen = zmq_recv(s->socket, id, sizeof id, 0);
        while (more) {
            int got = zmq_recv(s->socket, s->frames[count < MAX_FRAMES ? count : MAX_FRAMES - 1], FRAME_BYTES, 0);
            if (count < MAX_FRAMES) {
                frames[count].data = s->frames[count];
                frames[count].size = (size_t)(got < FRAME_BYTES ? got : FRAME_BYTES);
            }
            count++;
            zmq_getsockopt(s->socket, ZMQ_RCVMORE, &more, &more_size);
        }
        if (rlx_decode(frames, count, &limits, &m, &err) != RLX_OK) {
            fprintf(stderr, "fake server: the client sent a malformed message: %s\n", err.text);
            pthread_mutex_lock(&s->lock);
            failures++;
            pthread_mutex_unlock(&s->lock);
            continue;
        }
        pthread_mutex_lock(&s->lock);
        record(s, &m);
        handle(s, id, (size_t)idlen, &m);
        pthread_mutex_unlock(&s->lock);
    }
    return NULL;
}

static void server_start(server *s) {
    size_t size = sizeof s->endpoint;
    int linger = 0;
    memset(s, 0, sizeof *s);
    s->next_id = 1000;
    pthread_mutex_init(&s->lock, NULL);
    s->context = zmq_ctx_new();
    s->socket = zmq_socket(s->context, ZMQ_ROUTER);
    zmq_setsockopt(s->socket, ZMQ_LINGER, &linger, sizeof linger);
    if (zmq_bind(s->socket, "tcp://127.0.0.1:*") != 0) {
        fprintf(stderr, "fake server: bind failed: %s\n", zmq_strerror(zmq_errno()));
        exit(2);
    }
    zmq_getsockopt(s->socket, ZMQ_LAST_ENDPOINT, s->endpoint, &size);
    pthread_create(&s->thread, NULL, serve, s);
}

static void server_stop(server *s) {
    pthread_mutex_lock(&s->lock);
    s->stop = 1;
    pthread_mutex_unlock(&s->lock);
    pthread_join(s->thread, NULL);
    zmq_close(s->socket);
    zmq_ctx_term(s->context);
    pthread_mutex_destroy(&s->lock);
}

/* the index of the last logged request of type at or after from (-1: none within 2 s) */
static int wait_logged(server *s, uint8_t type, int from) {
    int tries, i;
    for (tries = 0; tries < 200; tries++) {
        pthread_mutex_lock(&s->lock);
        for (i = s->nlog - 1; i >= from; i--) {
            if (s->log[i].type == type) {
                pthread_mutex_unlock(&s->lock);
                return i;
            }
        }
        pthread_mutex_unlock(&s->lock);
        sleep_ms(10);
    }
    return -1;
}

/* the index of the first logged request of type at or after from (-1: none within 2 s);
   closes of earlier clients arrive when they arrive, so checks look requests up by type */
static int first_logged(server *s, uint8_t type, int from) {
    int tries, i;
    for (tries = 0; tries < 200; tries++) {
        pthread_mutex_lock(&s->lock);
        for (i = from; i < s->nlog; i++) {
            if (s->log[i].type == type) {
                pthread_mutex_unlock(&s->lock);
                return i;
            }
        }
        pthread_mutex_unlock(&s->lock);
        sleep_ms(10);
    }
    return -1;
}

static int log_size(server *s) {
    int n;
    pthread_mutex_lock(&s->lock);
    n = s->nlog;
    pthread_mutex_unlock(&s->lock);
    return n;
}

static void set_behaviour(int *field, int value) {
    pthread_mutex_lock(&S.lock);
    *field = value;
    pthread_mutex_unlock(&S.lock);
}

static void options_for(rlx_options *o, uint32_t n) {
    rlx_options_init(o);
    o->endpoint = S.endpoint;
    o->session_count = n;
    o->request_timeout_ms = 2000;
    o->backoff_initial_ms = 10;
    o->backoff_max_ms = 40;
    o->retry_deadline_ms = 2000;
    o->seed = 7;
}

/* -- options and keys ---------------------------------------------------------------------- */

static void expect_connect_error(const rlx_options *o, int status, const char *text, const char *what) {
    rlx_client *c = NULL;
    int rc = rlx_connect(o, &c);
    CHECK(rc == status, "%s: expected %s, got %s (%s)", what, rlx_strerror(status), rlx_strerror(rc),
          rlx_last_error(c));
    CHECK(strstr(rlx_last_error(c), text) != NULL, "%s: the text \"%s\" does not mention %s", what, rlx_last_error(c),
          text);
    CHECK(c == NULL || rlx_init(c, 0) == RLX_E_STATE, "%s: a failed handle accepts rlx_init", what);
    rlx_close(c);
}

static void test_options(void) {
    rlx_options o;
    rlx_client *c = NULL;
    static uint64_t memory[512];
    CHECK(rlx_connect(NULL, &c) == RLX_E_ARG && c != NULL, "NULL options");
    rlx_close(c);
    CHECK(rlx_connect(NULL, NULL) == RLX_E_ARG, "NULL out");
    options_for(&o, 1);
    o.endpoint = NULL;
    expect_connect_error(&o, RLX_E_ARG, "endpoint", "no endpoint");
    CHECK(rlx_client_size(&o) == 0, "rlx_client_size of invalid options");
    options_for(&o, 0);
    expect_connect_error(&o, RLX_E_ARG, "session_count: expected 1..4096, got 0", "no sessions");
    options_for(&o, 5000);
    expect_connect_error(&o, RLX_E_ARG, "session_count", "too many sessions");
    options_for(&o, 1);
    o.backoff_max_ms = 1;
    expect_connect_error(&o, RLX_E_ARG, "backoff_initial_ms", "backoff max below initial");
    options_for(&o, 1);
    o.max_action_bytes = 0;
    expect_connect_error(&o, RLX_E_ARG, "max_action_bytes", "no room for actions");
    options_for(&o, 1);
    o.endpoint = "nonsense";
    expect_connect_error(&o, RLX_E_ARG, "endpoint: expected \"tcp://host:port\", got \"nonsense\"", "bad endpoint");
    options_for(&o, 1);
    CHECK(rlx_client_size(&o) > 2048, "rlx_client_size of valid options: %zu", rlx_client_size(&o));
    CHECK(rlx_connect_in(memory, sizeof memory, &o, &c) == RLX_E_ARG && strstr(rlx_last_error(c), "memory: expected at least"),
          "connect into too little memory: %s", rlx_last_error(c));
    rlx_close(c);
    CHECK(rlx_connect_in((char *)memory + 1, sizeof memory - 1, &o, &c) == RLX_E_ARG && c == NULL,
          "connect into unaligned memory");
    CHECK(strlen(rlx_last_error(NULL)) > 10, "rlx_last_error(NULL)");
    CHECK(strcmp(rlx_strerror(RLX_E_TIMEOUT), "RLX_E_TIMEOUT") == 0 && strcmp(rlx_strerror(6), "RLX_E_BUSY") == 0,
          "rlx_strerror");
    CHECK(rlx_update(NULL, NULL, NULL, 0, 0, NULL) == RLX_E_ARG && rlx_close(NULL) == RLX_OK, "NULL handles");
}

static void test_curve(void) {
    rlx_options o;
    rlx_client *c = NULL;
    char server_public[41], server_secret[41], client_public[41], client_secret[41], bad[41];
    int mechanism = -1;
    size_t size = sizeof mechanism;
    char readback[41];
    size_t readback_size = sizeof readback;

    options_for(&o, 1);
    CHECK(rlx_connect(&o, &c) == RLX_OK, "plain connect: %s", rlx_last_error(c));
    zmq_getsockopt(rlx_socket(c), ZMQ_MECHANISM, &mechanism, &size);
    CHECK(mechanism == ZMQ_NULL, "no keys: mechanism %d, expected NULL", mechanism);
    rlx_close(c);
    if (!zmq_has("curve")) {
        options_for(&o, 1);
        o.curve_server_key = o.curve_public_key = o.curve_secret_key = "0000000000000000000000000000000000000000";
        expect_connect_error(&o, RLX_E_CURVE, "without it", "libzmq without CURVE");
        return;
    }
    zmq_curve_keypair(server_public, server_secret);
    zmq_curve_keypair(client_public, client_secret);

    options_for(&o, 1);
    o.curve_server_key = server_public;
    expect_connect_error(&o, RLX_E_CURVE, "got 1 of the 3", "only the server key");

    memcpy(bad, server_public, 40);
    bad[39] = '\0';
    options_for(&o, 1);
    o.curve_server_key = bad;
    o.curve_public_key = client_public;
    o.curve_secret_key = client_secret;
    expect_connect_error(&o, RLX_E_CURVE, "curve_server_key: expected 40 Z85 characters, got 39", "a short key");

    memcpy(bad, client_public, 41);
    bad[7] = '~'; /* not a Z85 character */
    o.curve_server_key = server_public;
    o.curve_public_key = bad;
    expect_connect_error(&o, RLX_E_CURVE, "curve_public_key: expected Z85 text", "a key outside Z85");

    o.curve_public_key = client_public;
    CHECK(rlx_connect(&o, &c) == RLX_OK, "connect with CURVE keys: %s", rlx_last_error(c));
    size = sizeof mechanism;
    zmq_getsockopt(rlx_socket(c), ZMQ_MECHANISM, &mechanism, &size);
    CHECK(mechanism == ZMQ_CURVE, "CURVE keys: mechanism %d, expected ZMQ_CURVE", mechanism);
    zmq_getsockopt(rlx_socket(c), ZMQ_CURVE_SERVERKEY, readback, &readback_size);
    CHECK(readback_size == 41 && strcmp(readback, server_public) == 0, "the server key set on the socket");
    rlx_close(c);
}

/* -- the session flow ---------------------------------------------------------------------- */

static void test_flow(void) {
    static uint64_t memory[4096];
    rlx_options o;
    rlx_client *c = NULL;
    rlx_tensor state, action;
    float obs[4] = {0.5f, -0.25f, 0.125f, 2.0f}, reward = 1.0f;
    uint32_t shape[2] = {1, 4};
    long before;
    int rc, i, at;
    uint64_t first;

    options_for(&o, 1);
    CHECK(rlx_client_size(&o) <= sizeof memory, "the handle needs %zu bytes", rlx_client_size(&o));
    before = allocations;
    rc = rlx_connect_in(memory, sizeof memory, &o, &c);
    CHECK(rc == RLX_OK, "connect_in: %s", rlx_last_error(c));
    CHECK(rlx_session_id(c) == 0, "a session before init");
    at = log_size(&S);
    CHECK(rlx_init(c, 0) == RLX_OK, "init: %s", rlx_last_error(c));
    first = rlx_session_id(c);
    CHECK(first != 0, "no session id after init");
    i = first_logged(&S, RLX_MSG_INIT, at);
    CHECK(i >= 0 && S.log[i].session_count == 1 && S.log[i].session_id == 0 && S.log[i].flags == 0,
          "the init request");

    state = rlx_tensor_of(RLX_FLOAT32, obs, 2, shape);
    at = log_size(&S);
    rc = rlx_update(c, NULL, &state, 0, 0, &action);
    CHECK(rc == RLX_OK, "first update: %s", rlx_last_error(c));
    CHECK(action.dtype == RLX_INT64 && action.ndim == 1 && action.shape[0] == 1 && action.nbytes == 8 &&
              rlx_tensor_i64(&action, 0) == 0,
          "the action of the first update");
    CHECK(S.log[at].type == RLX_MSG_UPDATE && !S.log[at].has_reward && S.log[at].has_state &&
              S.log[at].state_bytes == 16 && S.log[at].session_id == first && S.log[at].flags == 0 &&
              !S.log[at].has_flags,
          "the first update request");
    for (i = 0; i < 200; i++) {
        rc = rlx_update(c, &reward, &state, 0, 0, &action);
        if (rc != RLX_OK) break;
    }
    CHECK(rc == RLX_OK, "200 updates: %s", rlx_last_error(c));
    CHECK(S.log[log_size(&S) - 1].has_reward && S.log[log_size(&S) - 1].reward0 == 1.0f, "the reward sent");
    CHECK(S.log[log_size(&S) - 1].sequence == S.log[log_size(&S) - 2].sequence + 1, "sequences increase");

    CHECK(rlx_metric(c, "episode_reward", 41.0) == RLX_OK && rlx_metric(c, "episode_reward", 42.0) == RLX_OK &&
              rlx_metric_mean(c, "mean_of_two", 1.0) == RLX_OK && rlx_metric_mean(c, "mean_of_two", 3.0) == RLX_OK,
          "recording metrics: %s", rlx_last_error(c));
    at = log_size(&S);
    rc = rlx_update(c, &reward, &state, 1, 0, &action);
    CHECK(rc == RLX_OK, "terminal update: %s", rlx_last_error(c));
    CHECK(S.log[at].type == RLX_MSG_UPDATE && S.log[at].flags == RLX_FLAG_TERMINAL, "the terminal update");
    CHECK(S.log[at + 1].type == RLX_MSG_METRICS &&
              strcmp(S.log[at + 1].names, "episode_reward\nmean_of_two\naction_latency_client_ms") == 0 &&
              S.log[at + 1].nvalues == 3 && S.log[at + 1].values[0] == 42.0 && S.log[at + 1].values[1] == 2.0 &&
              S.log[at + 1].values[2] > 0.0,
          "the metrics flushed at the episode end: \"%s\"", S.log[at + 1].names);
    CHECK(action.nbytes == 8, "the action stays readable after the flush");
    rc = rlx_update(c, NULL, &state, 0, 1, &action);
    CHECK(rc == RLX_OK && S.log[log_size(&S) - 2].flags == RLX_FLAG_TRUNCATED, "a truncated update");

    CHECK(rlx_heartbeat(c) == RLX_OK, "heartbeat: %s", rlx_last_error(c));
    at = log_size(&S);
    CHECK(rlx_reset(c) == RLX_OK, "reset: %s", rlx_last_error(c));
    CHECK(S.log[log_size(&S) - 1].type == RLX_MSG_RESET, "the reset request");

    at = log_size(&S);
    CHECK(rlx_init(c, 1) == RLX_OK, "exploit init: %s", rlx_last_error(c));
    CHECK(rlx_session_id(c) != first, "init opens a new block");
    i = wait_logged(&S, RLX_MSG_CLOSE, at);
    CHECK(i >= 0 && S.log[i].session_id == first, "the old block is closed by a new init");
    i = wait_logged(&S, RLX_MSG_INIT, at);
    CHECK(i >= 0 && S.log[i].flags == RLX_FLAG_EXPLOIT, "the exploit init");

    at = log_size(&S);
    rlx_metric(c, "left_over", 1.0);
    CHECK(rlx_close(c) == RLX_OK, "close");
    i = wait_logged(&S, RLX_MSG_METRICS, at);
    CHECK(i >= 0 && strcmp(S.log[i].names, "left_over") == 0, "metrics sent on close");
    CHECK(wait_logged(&S, RLX_MSG_CLOSE, at) >= 0, "close sent");
    CHECK(allocations == before, "the library allocated %ld times with caller memory", allocations - before);
}

static void test_no_allocation_in_steps(void) {
    rlx_options o;
    rlx_client *c = NULL;
    rlx_tensor state, action;
    float obs[3 * 4] = {0}, rewards[3] = {1, 1, 1};
    uint8_t flags[3] = {0, 0, 0};
    uint32_t shape[2] = {3, 4};
    long before;
    int rc = RLX_OK, i;
    options_for(&o, 3);
    CHECK(rlx_connect(&o, &c) == RLX_OK && rlx_init(c, 0) == RLX_OK, "block of 3: %s", rlx_last_error(c));
    state = rlx_tensor_of(RLX_FLOAT32, obs, 2, shape);
    before = allocations;
    for (i = 0; i < 300 && rc == RLX_OK; i++) {
        flags[i % 3] = (uint8_t)(i % 7 == 0 ? RLX_EPISODE_TERMINAL : 0);
        rlx_metric_mean(c, "episode_reward", i);
        rc = rlx_update_block(c, i ? rewards : NULL, &state, flags, &action);
        if (i % 50 == 0) rc = rc == RLX_OK ? rlx_heartbeat(c) : rc;
    }
    CHECK(rc == RLX_OK, "300 block updates: %s", rlx_last_error(c));
    CHECK(rlx_reset(c) == RLX_OK, "reset: %s", rlx_last_error(c));
    CHECK(allocations == before, "the step path allocated %ld times", allocations - before);
    rlx_close(c);
}

static void test_block(void) {
    rlx_options o;
    rlx_client *c = NULL;
    rlx_tensor states, actions, wrong;
    float obs[3 * 2] = {0}, rewards[3];
    uint8_t flags[3] = {0, RLX_EPISODE_TERMINAL, RLX_EPISODE_TERMINAL | RLX_EPISODE_TRUNCATED}, bad[3] = {0, 4, 0};
    uint32_t shape[2] = {3, 2}, wrong_shape[2] = {2, 3};
    int at, rc, i;
    options_for(&o, 3);
    o.max_state_bytes = 24;
    CHECK(rlx_connect(&o, &c) == RLX_OK, "connect: %s", rlx_last_error(c));
    states = rlx_tensor_of(RLX_FLOAT32, obs, 2, shape);
    at = log_size(&S);
    rc = rlx_update_block(c, NULL, &states, NULL, &actions);
    CHECK(rc == RLX_OK, "first block update (opens the block): %s", rlx_last_error(c));
    i = first_logged(&S, RLX_MSG_INIT, at);
    CHECK(i >= 0 && S.log[i].session_count == 3, "an update without init opens the block");
    i = first_logged(&S, RLX_MSG_UPDATE, at);
    CHECK(i >= 0 && S.log[i].has_flags && S.log[i].episode_flags[1] == 0 && S.log[i].session_count == 3 &&
              !S.log[i].has_reward,
          "the first block update");
    CHECK(actions.shape[0] == 3 && rlx_tensor_i64(&actions, 0) == 0 && rlx_tensor_i64(&actions, 2) == 2,
          "the block's actions");
    rewards[0] = 1.0f;
    rewards[1] = 2.0f;
    rewards[2] = (float)NAN;
    at = log_size(&S);
    rc = rlx_update_block(c, rewards, &states, flags, &actions);
    CHECK(rc == RLX_OK, "block update with ends: %s", rlx_last_error(c));
    i = first_logged(&S, RLX_MSG_UPDATE, at);
    CHECK(i >= 0 && S.log[i].has_flags && S.log[i].flags == 0 && S.log[i].episode_flags[1] == 1 &&
              S.log[i].episode_flags[2] == 3 && S.log[i].reward0 == 1.0f,
          "per-session episode flags");
    CHECK(first_logged(&S, RLX_MSG_METRICS, at) > i, "an episode end flushes the metrics");
    CHECK(rlx_update_block(c, rewards, &states, bad, &actions) == RLX_E_ARG &&
              strstr(rlx_last_error(c), "episode_flags[1]") != NULL,
          "a bad episode flag: %s", rlx_last_error(c));
    wrong = rlx_tensor_of(RLX_FLOAT32, obs, 2, wrong_shape);
    CHECK(rlx_update_block(c, rewards, &wrong, NULL, &actions) == RLX_E_ARG &&
              strstr(rlx_last_error(c), "state: expected shape (3, ...)") != NULL,
          "a state of 2 rows: %s", rlx_last_error(c));
    wrong.dtype = 99;
    CHECK(rlx_update_block(c, rewards, &wrong, NULL, &actions) == RLX_E_ARG, "a state of dtype 99");
    shape[1] = 3;
    states = rlx_tensor_of(RLX_FLOAT32, obs, 2, shape);
    CHECK(rlx_update_block(c, rewards, &states, NULL, &actions) == RLX_E_LIMIT &&
              strstr(rlx_last_error(c), "max_state_bytes 24") != NULL,
          "a state above max_state_bytes: %s", rlx_last_error(c));
    CHECK(rlx_update_block(c, rewards, NULL, NULL, NULL) == RLX_E_ARG, "no action tensor");
    rlx_close(c);
}

/* -- the rules ----------------------------------------------------------------------------- */

static rlx_client *ready_client(uint32_t timeout_ms, size_t max_action) {
    rlx_options o;
    rlx_client *c = NULL;
    options_for(&o, 1);
    o.request_timeout_ms = timeout_ms;
    o.max_action_bytes = max_action;
    if (rlx_connect(&o, &c) != RLX_OK || rlx_init(c, 0) != RLX_OK) {
        fprintf(stderr, "cannot open a client: %s\n", rlx_last_error(c));
        exit(2);
    }
    return c;
}

static int step(rlx_client *c, rlx_tensor *action) {
    static const float obs[2] = {1, 2};
    static const uint32_t shape[2] = {1, 2};
    float reward = 1.0f;
    rlx_tensor state = rlx_tensor_of(RLX_FLOAT32, obs, 2, shape);
    return rlx_update(c, &reward, &state, 0, 0, action);
}

static void test_rules(void) {
    rlx_options o;
    rlx_client *c;
    rlx_tensor action;
    rlx_counters n;
    uint64_t sid;
    int rc, at, i;

    /* BUSY: retried with backoff until granted */
    set_behaviour(&S.busy_inits, 2);
    c = ready_client(2000, 64);
    n = rlx_get_counters(c);
    CHECK(n.retries == 2, "BUSY twice: %llu retries", (unsigned long long)n.retries);
    rlx_close(c);
    /* BUSY until the deadline: the server's code and text */
    options_for(&o, 1);
    o.retry_deadline_ms = 150;
    set_behaviour(&S.busy_inits, 1000000);
    CHECK(rlx_connect(&o, &c) == RLX_OK, "connect");
    rc = rlx_init(c, 0);
    CHECK(rc == RLX_E_BUSY && strcmp(rlx_last_error(c), "BUSY: no worker capacity; retry") == 0,
          "BUSY forever: %s (%s)", rlx_strerror(rc), rlx_last_error(c));
    CHECK(rlx_get_counters(c).retries >= 2, "BUSY forever was retried");
    set_behaviour(&S.busy_inits, 0);
    rlx_close(c);

    c = ready_client(2000, 64);
    /* RESTART on an action */
    set_behaviour(&S.restart_updates, 1);
    rc = step(c, &action);
    CHECK(rc == RLX_RESTART && strstr(rlx_last_error(c), "restarted") != NULL, "RESTART: %s", rlx_strerror(rc));
    CHECK(step(c, &action) == RLX_OK, "the update after a RESTART");
    /* UNKNOWN_SESSION: a new block, then RLX_RESTART */
    sid = rlx_session_id(c);
    set_behaviour(&S.unknown_updates, 1);
    at = log_size(&S);
    rc = step(c, &action);
    CHECK(rc == RLX_RESTART && strstr(rlx_last_error(c), "UNKNOWN_SESSION: no such session") != NULL,
          "UNKNOWN_SESSION: %s (%s)", rlx_strerror(rc), rlx_last_error(c));
    i = first_logged(&S, RLX_MSG_INIT, at);
    CHECK(i >= 0 && S.log[i].session_id == 0 && rlx_session_id(c) != sid, "UNKNOWN_SESSION opens a new block");
    /* an error the client reports */
    set_behaviour(&S.malformed_updates, 1);
    rc = step(c, &action);
    CHECK(rc == RLX_E_MALFORMED && strcmp(rlx_last_error(c), "MALFORMED: state: expected float32, got int8") == 0,
          "MALFORMED: %s (%s)", rlx_strerror(rc), rlx_last_error(c));
    /* a stale reply (another sequence) is skipped */
    set_behaviour(&S.stale_updates, 1);
    CHECK(step(c, &action) == RLX_OK && rlx_get_counters(c).stale == 1, "a stale reply: %s", rlx_last_error(c));
    /* a malformed reply */
    set_behaviour(&S.bad_magic_updates, 1);
    rc = step(c, &action);
    CHECK(rc == RLX_E_PROTOCOL && strstr(rlx_last_error(c), "header.magic: expected 52 4c 58 50 (RLXP), got 52 4c 58 51") != NULL,
          "a reply with a bad magic: %s (%s)", rlx_strerror(rc), rlx_last_error(c));
    CHECK(step(c, &action) == RLX_OK, "the update after a malformed reply");
    /* a reply of another type */
    set_behaviour(&S.done_for_updates, 1);
    rc = step(c, &action);
    CHECK(rc == RLX_E_PROTOCOL && strstr(rlx_last_error(c), "reply.type: expected action, got done") != NULL,
          "done for an update: %s", rlx_last_error(c));
    /* actions above max_action_bytes (64): in the buffer, then beyond it */
    pthread_mutex_lock(&S.lock);
    S.big_action_updates = 1;
    S.big_action_width = 16;
    pthread_mutex_unlock(&S.lock);
    rc = step(c, &action);
    CHECK(rc == RLX_E_LIMIT && strstr(rlx_last_error(c), "action: expected at most max_action_bytes 64 bytes, got 128"),
          "an action of 128 bytes: %s", rlx_last_error(c));
    pthread_mutex_lock(&S.lock);
    S.big_action_updates = 1;
    S.big_action_width = 400;
    pthread_mutex_unlock(&S.lock);
    rc = step(c, &action);
    CHECK(rc == RLX_E_LIMIT && strstr(rlx_last_error(c), "do not fit the receive buffer"),
          "an action of 3200 bytes: %s", rlx_last_error(c));
    CHECK(step(c, &action) == RLX_OK, "the update after a reply too large");
    /* metric names */
    CHECK(rlx_metric(c, "", 1) == RLX_E_ARG && rlx_metric(c, "a\nb", 1) == RLX_E_ARG &&
              rlx_metric(c, NULL, 1) == RLX_E_ARG && rlx_metric(c, "action_latency_client_ms", 1) == RLX_E_ARG,
          "bad metric names");
    CHECK(rlx_metric(c, "0123456789012345678901234567890123456789012345678901234567890123", 1) == RLX_E_ARG,
          "a metric name of 64 bytes");
    for (i = 0, rc = RLX_OK; i < 17 && rc == RLX_OK; i++) {
        char name[16];
        snprintf(name, sizeof name, "m%d", i);
        rc = rlx_metric(c, name, i);
    }
    CHECK(i == 17 && rc == RLX_E_LIMIT && strstr(rlx_last_error(c), "max_metrics 16"), "the 17th metric name: %s",
          rlx_last_error(c));
    CHECK(rlx_flush_metrics(c) == RLX_OK && rlx_flush_metrics(c) == RLX_OK, "flushes");
    rlx_close(c);

    /* no reply: the socket is reopened, the block resumed, the episode restarted */
    c = ready_client(150, 64);
    sid = rlx_session_id(c);
    set_behaviour(&S.drop_updates, 1);
    at = log_size(&S);
    rc = step(c, &action);
    n = rlx_get_counters(c);
    CHECK(rc == RLX_RESTART && strstr(rlx_last_error(c), "no reply to update within 0.15 s") != NULL,
          "no reply: %s (%s)", rlx_strerror(rc), rlx_last_error(c));
    CHECK(n.reopened == 1 && n.restarts == 1, "no reply: %llu reopened, %llu restarts", (unsigned long long)n.reopened,
          (unsigned long long)n.restarts);
    i = first_logged(&S, RLX_MSG_INIT, at);
    CHECK(i >= 0 && S.log[i].session_id == sid && rlx_session_id(c) == sid, "no reply: the block is resumed");
    CHECK(step(c, &action) == RLX_OK, "the update after a resume");
    rlx_close(c);
}

static void test_no_server(void) {
    rlx_options o;
    rlx_client *c = NULL;
    int rc;
    void *probe = zmq_ctx_new(), *sock = zmq_socket(probe, ZMQ_ROUTER);
    char endpoint[64];
    size_t size = sizeof endpoint;
    int linger = 0;
    /* a port that was free a moment ago: nothing answers there */
    zmq_bind(sock, "tcp://127.0.0.1:*");
    zmq_getsockopt(sock, ZMQ_LAST_ENDPOINT, endpoint, &size);
    zmq_setsockopt(sock, ZMQ_LINGER, &linger, sizeof linger);
    zmq_close(sock);
    zmq_ctx_term(probe);
    options_for(&o, 1);
    o.endpoint = endpoint;
    o.request_timeout_ms = 60;
    o.retry_deadline_ms = 200;
    CHECK(rlx_connect(&o, &c) == RLX_OK, "connect to nothing (asynchronous): %s", rlx_last_error(c));
    rc = rlx_init(c, 0);
    CHECK(rc == RLX_E_TIMEOUT && strstr(rlx_last_error(c), "no reply to init within 0.06 s") != NULL,
          "init without server: %s (%s)", rlx_strerror(rc), rlx_last_error(c));
    CHECK(rlx_get_counters(c).reopened >= 2 && rlx_get_counters(c).retries >= 1, "init without server was retried");
    rlx_close(c);
}

/* two handles on two threads against the same server: nothing shared */
static void *stepper(void *arg) {
    rlx_client *c = ready_client(2000, 64);
    rlx_tensor action;
    int i, *result = (int *)arg;
    *result = RLX_OK;
    for (i = 0; i < 300 && *result == RLX_OK; i++) *result = step(c, &action);
    rlx_close(c);
    return NULL;
}

static void test_threads(void) {
    pthread_t a, b;
    int ra = -1, rb = -1;
    pthread_create(&a, NULL, stepper, &ra);
    pthread_create(&b, NULL, stepper, &rb);
    pthread_join(a, NULL);
    pthread_join(b, NULL);
    CHECK(ra == RLX_OK && rb == RLX_OK, "two threads: %s, %s", rlx_strerror(ra), rlx_strerror(rb));
}

int main(void) {
    server_start(&S);
    test_options();
    test_curve();
    test_flow();
    test_no_allocation_in_steps();
    test_block();
    test_rules();
    test_threads();
    server_stop(&S);
    test_no_server();
    printf("test_client: %d checks, %d failed\n", checks, failures);
    return failures ? 1 : 0;
}

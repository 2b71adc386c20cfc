/*
 * librlx: the C client of relaax-zmq (C99, depends only on libzmq).
 *
 * An environment that is a device, a PLC or a simulator talks RLX (docs/protocol.md) to the
 * broker's frontend through one handle per block of sessions:
 *
 *     rlx_options o;
 *     rlx_options_init(&o);
 *     o.endpoint = "tcp://127.0.0.1:7000";
 *     o.max_state_bytes = 4 * sizeof(float);
 *     rlx_client *c;
 *     if (rlx_connect(&o, &c) != RLX_OK) { puts(rlx_last_error(c)); rlx_close(c); return 1; }
 *     rlx_init(c, 0);
 *     rlx_tensor state = rlx_tensor_of(RLX_FLOAT32, obs, 2, (uint32_t[]){1, 4}), action;
 *     int rc = rlx_update(c, NULL, &state, 0, 0, &action);     first step: no reward
 *     ... rlx_tensor_i64(&action, 0) ...
 *     rlx_close(c);
 *
 * Rules (docs/c_client.md has the walkthrough):
 * - Every operation (connect, init, update, reset, metrics, heartbeat, close) returns a
 *   status: RLX_OK (0), RLX_RESTART (start new episodes: not a failure), an RLX server error
 *   code (1..9, the server refused the request) or a client error (RLX_E_*).
 *   rlx_last_error(c) says what happened, per handle.
 * - Memory: rlx_connect takes one block (rlx_client_size bytes) or rlx_connect_in uses the
 *   caller's; nothing is allocated afterwards (libzmq manages its own message memory).
 * - No global state: handles are independent; one handle is used by one thread at a time.
 * - Little-endian hosts only (x86, ARM, RISC-V...): tensor payloads travel as they lie in memory.
 */
#ifndef RLX_H
#define RLX_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* What the shared library exports (built with -fvisibility=hidden) */
#if defined(__GNUC__) && !defined(RLX_API)
#define RLX_API __attribute__((visibility("default")))
#elif !defined(RLX_API)
#define RLX_API
#endif

#define RLX_PROTOCOL_VERSION 1
#define RLX_MAX_NDIM 8
/** Longest metric name (bytes, without the terminating NUL). */
#define RLX_METRIC_NAME_MAX 63
/** Size of the per-handle error text (bytes, with the NUL). */
#define RLX_ERROR_MAX 256

/* -- statuses ------------------------------------------------------------------------------ */

enum rlx_status {
    RLX_OK = 0,
    /* 1..9: the server answered an error message with this code (docs/protocol.md 3.1) */
    RLX_E_MALFORMED = 1,           /* the request broke the spec (the text names the field) */
    RLX_E_UNSUPPORTED_VERSION = 2, /* the server does not speak RLX version 1 */
    RLX_E_UNKNOWN_TYPE = 3,        /* the server does not handle this message type */
    RLX_E_TOO_LARGE = 4,           /* a server limit was exceeded */
    RLX_E_UNKNOWN_SESSION = 5,     /* (handled inside: a new block is opened, RLX_RESTART) */
    RLX_E_BUSY = 6,                /* admission refused until retry_deadline_ms passed */
    RLX_E_AUTH = 7,                /* authentication failed */
    RLX_E_INTERNAL = 8,            /* the server failed on this request: retry */
    RLX_E_SHUTTING_DOWN = 9,       /* the server is stopping: reconnect later */
    RLX_E_SERVER = 10,             /* an error code this library does not know (see the text) */
    /* not a failure: the server lost or moved the block (or a reply did not come and the
       block was resumed); reset the environments, the next update carries no reward */
    RLX_RESTART = 20,
    /* client-side errors */
    RLX_E_TIMEOUT = 21,  /* no reply within request_timeout_ms, retried until retry_deadline_ms */
    RLX_E_PROTOCOL = 22, /* a reply broke the protocol (the text names the field) */
    RLX_E_LIMIT = 23,    /* above a declared limit (max_state_bytes, max_action_bytes, metrics) */
    RLX_E_ARG = 24,      /* a bad argument or option (the text names it) */
    RLX_E_CURVE = 25,    /* CURVE keys malformed, incomplete, or libzmq without CURVE */
    RLX_E_ZMQ = 26,      /* a libzmq call failed (the text has zmq_strerror) */
    RLX_E_STATE = 27,    /* the call does not fit the handle's state (no socket, closed) */
    RLX_E_NOMEM = 28     /* rlx_connect could not allocate the handle */
};

/* -- wire constants (docs/protocol.md) ----------------------------------------------------- */

enum rlx_dtype {
    RLX_BOOL = 1,
    RLX_UINT8 = 2,
    RLX_INT8 = 3,
    RLX_UINT16 = 4,
    RLX_INT16 = 5,
    RLX_UINT32 = 6,
    RLX_INT32 = 7,
    RLX_UINT64 = 8,
    RLX_INT64 = 9,
    RLX_FLOAT16 = 10,
    RLX_FLOAT32 = 11,
    RLX_FLOAT64 = 12
};

enum rlx_role {
    RLX_ROLE_REWARD = 1,
    RLX_ROLE_STATE = 2,
    RLX_ROLE_EPISODE_FLAGS = 3,
    RLX_ROLE_ACTION = 4,
    RLX_ROLE_METRIC_NAMES = 5,
    RLX_ROLE_METRIC_VALUES = 6,
    RLX_ROLE_HISTOGRAM_NAMES = 7,
    RLX_ROLE_HISTOGRAM_LENGTHS = 8,
    RLX_ROLE_HISTOGRAM_VALUES = 9,
    RLX_ROLE_ERROR_CODE = 10,
    RLX_ROLE_TEXT = 11,
    RLX_ROLE_VERSIONS = 12
};
#define RLX_ROLE_COUNT 12

enum rlx_message_type {
    RLX_MSG_INIT = 1,
    RLX_MSG_READY = 2,
    RLX_MSG_UPDATE = 3,
    RLX_MSG_ACTION = 4,
    RLX_MSG_RESET = 5,
    RLX_MSG_DONE = 6,
    RLX_MSG_METRICS = 7,
    RLX_MSG_CLOSE = 8,
    RLX_MSG_HEARTBEAT = 9,
    RLX_MSG_ERROR = 10
};

enum rlx_flag { RLX_FLAG_EXPLOIT = 0x1, RLX_FLAG_TERMINAL = 0x2, RLX_FLAG_TRUNCATED = 0x4, RLX_FLAG_RESTART = 0x8 };

/** Bits of one session's entry in the episode_flags of rlx_update_block. */
enum rlx_episode_flag { RLX_EPISODE_TERMINAL = 0x1, RLX_EPISODE_TRUNCATED = 0x2 };

/* -- tensors ------------------------------------------------------------------------------- */

/**
 * A tensor: dtype, shape and C-order little-endian elements at data.
 * ndim 0 is a scalar (one element); shape entries past ndim are ignored on input.
 * nbytes is set on tensors the library returns; on input it is computed from the shape.
 */
typedef struct rlx_tensor {
    uint8_t dtype;
    uint8_t ndim;
    uint32_t shape[RLX_MAX_NDIM];
    const void *data;
    size_t nbytes;
} rlx_tensor;

/** A tensor over data with the first ndim entries of shape (ndim <= 8; more is cut to 8). */
RLX_API rlx_tensor rlx_tensor_of(int dtype, const void *data, int ndim, const uint32_t *shape);
/** Bytes of one element of dtype, 0 for an unknown dtype. */
RLX_API size_t rlx_dtype_size(int dtype);
/** Elements of t (the product of its shape, 1 for a scalar). */
RLX_API uint64_t rlx_tensor_elements(const rlx_tensor *t);
/** Element index (C order) of t as an integer, whatever its dtype (floats truncate); 0 past the end. */
RLX_API int64_t rlx_tensor_i64(const rlx_tensor *t, uint64_t index);
/** Element index (C order) of t as a double, whatever its dtype; 0 past the end. */
RLX_API double rlx_tensor_f64(const rlx_tensor *t, uint64_t index);

/* -- the client ---------------------------------------------------------------------------- */

/** Decoder limits (docs/protocol.md section 5); replies above them are refused. */
typedef struct rlx_limits {
    uint64_t max_elements; /* elements of one tensor (default 2^28) */
    uint32_t max_tensors;  /* tensors of one message (default 64) */
    uint32_t max_sessions; /* sessions of one message (default 4096) */
} rlx_limits;

/** How to connect; rlx_options_init fills the defaults, then set at least endpoint. */
typedef struct rlx_options {
    const char *endpoint;     /* the broker's frontend, "tcp://host:port" (broker.frontend) */
    uint32_t session_count;   /* N, sessions of the block (1; a vectorised client uses N) */
    size_t max_state_bytes;   /* largest state payload of one update, all N sessions (4096) */
    size_t max_action_bytes;  /* largest action payload of one reply, all N sessions (1024) */
    size_t max_reply_text;    /* bytes of a server error text kept in the buffer (1024) */
    uint32_t max_metrics;     /* metric names buffered between two flushes (16) */
    uint32_t request_timeout_ms;  /* a reply waits this long (broker.client_request_timeout: 10000) */
    uint32_t backoff_initial_ms;  /* first retry delay of a refused init (100); it doubles */
    uint32_t backoff_max_ms;      /* longest retry delay (10000) */
    uint32_t retry_deadline_ms;   /* an init retries BUSY and timeouts this long (60000) */
    int64_t max_message_bytes;    /* ZMQ_MAXMSGSIZE of the socket (1 << 30) */
    rlx_limits limits;            /* decoder limits of replies (the protocol's defaults) */
    /* CURVE (all three or none): the broker's public key and this client's key pair, each a
       40-character Z85 string as zmq_curve_keypair writes them */
    const char *curve_server_key;
    const char *curve_public_key;
    const char *curve_secret_key;
    void *zmq_context; /* a libzmq context shared by several handles; NULL: the handle owns one */
    uint64_t seed;     /* seed of the retry jitter and the first sequence; 0: clock and address */
} rlx_options;

typedef struct rlx_client rlx_client;

/** Counters of one handle. */
typedef struct rlx_counters {
    uint64_t requests;  /* requests sent and answered */
    uint64_t restarts;  /* RLX_RESTART returned */
    uint64_t reopened;  /* sockets replaced after a timeout */
    uint64_t retries;   /* init attempts refused (BUSY) or unanswered, then retried */
    uint64_t stale;     /* replies discarded for another sequence */
} rlx_counters;

/** Fill o with the defaults (endpoint NULL). */
RLX_API void rlx_options_init(rlx_options *o);

/** Bytes a handle for these options takes (0 when the options are invalid). */
RLX_API size_t rlx_client_size(const rlx_options *o);

/**
 * Validate the options, allocate the handle (one malloc of rlx_client_size bytes) and open
 * the socket (connecting is asynchronous: nothing is sent before rlx_init).
 * On failure *out is still a handle holding the error text (or NULL when allocation
 * failed): read rlx_last_error(*out), then rlx_close(*out).
 */
RLX_API int rlx_connect(const rlx_options *o, rlx_client **out);

/** rlx_connect into caller memory (size >= rlx_client_size(o), 8-byte aligned); never allocates. */
RLX_API int rlx_connect_in(void *memory, size_t size, const rlx_options *o, rlx_client **out);

/** Ask the broker for a new block of N sessions; exploit: act only, no learning. Retries BUSY. */
RLX_API int rlx_init(rlx_client *c, int exploit);

/**
 * One step of every session of the block with the same episode end for all.
 * reward: N float32 rewards of the previous actions, or NULL on the first step of an episode;
 * state: (N, ...) observations, or NULL; terminal/truncated: the episodes ended (non-zero).
 * action: receives the actions, shape (N, ...): a view into the handle's buffer, valid until
 * the next call on the handle. Returns RLX_RESTART when the episodes must start again.
 */
RLX_API int rlx_update(rlx_client *c, const float *reward, const rlx_tensor *state, int terminal,
               int truncated, rlx_tensor *action);

/**
 * One step of a block whose sessions end their episodes independently (a vectorised
 * environment). episode_flags: N bytes of RLX_EPISODE_TERMINAL | RLX_EPISODE_TRUNCATED, or
 * NULL for none. Convention (docs/exchange.md): the step ending session i's episode carries its
 * reward, final state and flag in row i (its action is discarded); the next update's row i holds
 * the new episode's first state, flags 0 and reward NaN. rewards NULL on the block's first step.
 */
RLX_API int rlx_update_block(rlx_client *c, const float *rewards, const rlx_tensor *states,
                     const uint8_t *episode_flags, rlx_tensor *actions);

/** Flush the metrics and end the block's episodes (a restart is absorbed: they end anyway). */
RLX_API int rlx_reset(rlx_client *c);

/** Record a scalar metric (the last value before the flush is sent). Name: 1..63 bytes, no '\n'. */
RLX_API int rlx_metric(rlx_client *c, const char *name, double value);
/** Record a value of a scalar metric sent as the mean of the values before the flush. */
RLX_API int rlx_metric_mean(rlx_client *c, const char *name, double value);
/** Send the buffered metrics as one message (nothing when empty); also done at episode ends. */
RLX_API int rlx_flush_metrics(rlx_client *c);

/** Tell the broker the block is alive (during long pauses between steps). */
RLX_API int rlx_heartbeat(rlx_client *c);

/** First session id of the block (0 before rlx_init). */
RLX_API uint64_t rlx_session_id(const rlx_client *c);
/** The handle's counters. */
RLX_API rlx_counters rlx_get_counters(const rlx_client *c);
/** The handle's libzmq socket (for zmq_getsockopt; do not send or receive on it), or NULL. */
RLX_API void *rlx_socket(const rlx_client *c);

/** Send pending metrics and close (without waiting), close the socket, free the handle. NULL is fine. */
RLX_API int rlx_close(rlx_client *c);

/** What the last call on c that did not return RLX_OK reported ("" before any); a fixed text for NULL. */
RLX_API const char *rlx_last_error(const rlx_client *c);
/** The name of a status ("RLX_E_TIMEOUT"). */
RLX_API const char *rlx_strerror(int status);

#ifdef __cplusplus
}
#endif

#endif /* RLX_H */

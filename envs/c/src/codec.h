/*
 * The RLX version 1 codec (docs/protocol.md): frames <-> rlx_message, no I/O, no allocation.
 *
 * Internal to librlx (the tests and the fuzz target use it too). Decoding checks everything
 * section 5 lists, in its order, and names the first failing field exactly as the Python
 * codecs do ("tensor[0].payload"); decoded tensors point into the frames (never copied) and
 * nothing is read past a frame's size.
 */
#ifndef RLX_CODEC_H
#define RLX_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include "rlx.h"

/* printf-style format checking of the library's error texts */
#if defined(__GNUC__)
#define RLX_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))
#else
#define RLX_PRINTF(fmt, args)
#endif

#define RLX_HEADER_SIZE 32
#define RLX_DESCRIPTOR_SIZE 40
#define RLX_KNOWN_FLAGS 0xF
/** Frames of the largest valid message: header, table and one payload per role a type allows (5). */
#define RLX_MAX_VALID_FRAMES 7

/** One ZeroMQ frame. */
typedef struct rlx_frame {
    const uint8_t *data;
    size_t size;
} rlx_frame;

/** A message: header fields and at most one tensor per role (bit r of present: roles[r] set). */
typedef struct rlx_message {
    uint8_t version;
    uint8_t type;
    uint16_t flags;
    uint64_t sequence;
    uint64_t session_id;
    uint32_t session_count;
    uint16_t present;
    rlx_tensor roles[RLX_ROLE_COUNT + 1]; /* [0] unused */
} rlx_message;

/** Why a message was refused: the field (as the Python ProtocolError names it) and the text. */
typedef struct rlx_codec_error {
    char field[32];
    char text[RLX_ERROR_MAX];
} rlx_codec_error;

/** The protocol's default limits. */
rlx_limits rlx_default_limits(void);

/** An empty message of type, version 1. */
void rlx_message_init(rlx_message *m, uint8_t type);
/** Set the tensor of role (present from now on). */
void rlx_message_set(rlx_message *m, int role, const rlx_tensor *t);
/** The tensor of role, or NULL. */
const rlx_tensor *rlx_message_get(const rlx_message *m, int role);
/** Tensors present. */
unsigned rlx_message_count(const rlx_message *m);

/** Bytes of the header and table frames an encoding of m needs. */
size_t rlx_encoded_head_size(const rlx_message *m);

/**
 * Encode m: header and descriptor table are written into head (head_cap >= rlx_encoded_head_size),
 * frames[] lists header, table and payloads (pointing at the tensors' data), in ascending role
 * order, and *nframes their count. RLX_OK, or RLX_E_PROTOCOL with err set when m breaks the protocol.
 */
int rlx_encode(const rlx_message *m, const rlx_limits *limits, uint8_t *head, size_t head_cap,
               rlx_frame *frames, size_t frames_cap, size_t *nframes, rlx_codec_error *err);

/** Decode frames into m (tensors point into the frames). RLX_OK, or RLX_E_PROTOCOL with err set. */
int rlx_decode(const rlx_frame *frames, size_t count, const rlx_limits *limits, rlx_message *m,
               rlx_codec_error *err);

/** The spec's name of a role ("state"), message type ("update"), dtype ("float32"). */
const char *rlx_role_name(int role);
const char *rlx_type_name(int type);
const char *rlx_dtype_name(int dtype);

#endif /* RLX_CODEC_H */

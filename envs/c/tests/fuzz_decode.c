/*
 * Fuzz target of the RLX decoder (what the client runs on every reply).
 *
 * The input is split into frames (fuzz_decode.h), each copied into a heap buffer of exactly its
 * size so that AddressSanitizer catches a read past any frame. Every input is decoded with the
 * protocol's limits and with a client's small ones; an accepted message must re-encode into
 * frames that decode to the same message, and every element of its tensors is read back.
 * Any failed property aborts (a finding). Built with libFuzzer (clang -fsanitize=fuzzer) or with
 * fuzz_driver.c under gcc.
 */
#include "fuzz_decode.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "rlx.h"

unsigned long fuzz_accepted = 0, fuzz_refused = 0;

static void require(int ok, const char *what, const char *detail) {
    if (!ok) {
        fprintf(stderr, "fuzz_decode: property broken: %s (%s)\n", what, detail);
        abort();
    }
}

static int same_tensor(const rlx_tensor *a, const rlx_tensor *b) {
    return a->dtype == b->dtype && a->ndim == b->ndim && memcmp(a->shape, b->shape, sizeof(uint32_t) * a->ndim) == 0 &&
           a->nbytes == b->nbytes && (a->nbytes == 0 || memcmp(a->data, b->data, a->nbytes) == 0);
}

static void check_accepted(const rlx_message *m, const rlx_limits *limits) {
    uint8_t head[RLX_HEADER_SIZE + RLX_DESCRIPTOR_SIZE * RLX_ROLE_COUNT];
    rlx_frame frames[2 + RLX_ROLE_COUNT];
    rlx_message again;
    rlx_codec_error err;
    size_t count = 0;
    int role;
    volatile double sink = 0.0;
    require(rlx_encode(m, limits, head, sizeof head, frames, 2 + RLX_ROLE_COUNT, &count, &err) == RLX_OK,
            "an accepted message re-encodes", err.text);
    require(rlx_decode(frames, count, limits, &again, &err) == RLX_OK, "a re-encoded message decodes", err.text);
    require(again.version == m->version && again.type == m->type && again.flags == m->flags &&
                again.sequence == m->sequence && again.session_id == m->session_id &&
                again.session_count == m->session_count && again.present == m->present,
            "re-encoding keeps the header", "");
    for (role = 1; role <= RLX_ROLE_COUNT; role++) {
        const rlx_tensor *t = rlx_message_get(m, role);
        uint64_t i, elements;
        if (t == NULL) continue;
        require(same_tensor(t, rlx_message_get(&again, role)), "re-encoding keeps every tensor", rlx_role_name(role));
        elements = rlx_tensor_elements(t);
        require(elements * rlx_dtype_size(t->dtype) == t->nbytes, "a tensor's bytes match its shape",
                rlx_role_name(role));
        for (i = 0; i < elements && i < 256; i++) sink += rlx_tensor_f64(t, i) + (double)rlx_tensor_i64(t, i);
    }
    (void)sink;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    rlx_frame frames[FUZZ_MAX_FRAMES];
    size_t count = 0, at = 0, i;
    rlx_limits limits[2];
    int k;
    limits[0] = rlx_default_limits();
    limits[1].max_elements = 4096;
    limits[1].max_tensors = 3;
    limits[1].max_sessions = 16;
    while (at < size && count < FUZZ_MAX_FRAMES) {
        size_t length = size - at >= 2 ? (size_t)(data[at] | (data[at + 1] << 8)) : 0;
        uint8_t *copy;
        at += size - at >= 2 ? 2 : size - at;
        if (length > size - at) length = size - at;
        copy = length ? (uint8_t *)malloc(length) : NULL;
        if (length) memcpy(copy, data + at, length);
        frames[count].data = copy;
        frames[count].size = length;
        count++;
        at += length;
    }
    for (k = 0; k < 2; k++) {
        rlx_message m;
        rlx_codec_error err;
        memset(&err, 0, sizeof err);
        if (rlx_decode(frames, count, &limits[k], &m, &err) == RLX_OK) {
            fuzz_accepted++;
            check_accepted(&m, &limits[k]);
        } else {
            fuzz_refused++;
            require(err.field[0] != '\0' && strstr(err.text, "expected") != NULL, "a refusal names its field",
                    err.text);
        }
    }
    for (i = 0; i < count; i++) free((void *)frames[i].data);
    return 0;
}

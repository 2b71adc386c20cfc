/*
 * The RLX test-vector file (relaax_zmq/protocol/testdata/rlx_v1_vectors.txt, its format is
 * documented in relaax_zmq/protocol/vectors.py), read for the C tests and the fuzz driver.
 */
#ifndef RLX_TEST_VECTORS_H
#define RLX_TEST_VECTORS_H

#include <stddef.h>
#include <stdint.h>

#define VEC_MAX_TENSORS 16
#define VEC_MAX_FRAMES 32

typedef struct vec_tensor {
    int role, dtype, ndim;
    uint32_t shape[8];
    uint8_t *bytes; /* the values encoded little-endian, exactly as a payload frame */
    size_t nbytes;
} vec_tensor;

typedef struct vec_entry {
    char name[64];
    int valid;             /* "vector" (1) or "invalid" (0) */
    char error_field[32];  /* the field an invalid vector's error names */
    unsigned version, type, flags;
    uint64_t sequence, session_id;
    uint32_t session_count;
    vec_tensor tensors[VEC_MAX_TENSORS];
    int ntensors;
    uint8_t *frames[VEC_MAX_FRAMES]; /* each exactly sizes[i] bytes (NULL when empty) */
    size_t sizes[VEC_MAX_FRAMES];
    int nframes;
} vec_entry;

/* Parse path; 0 and *out (vec_free it) on success, -1 with a message in err else. */
int vec_load(const char *path, vec_entry **out, size_t *count, char *err, size_t errlen);
void vec_free(vec_entry *entries, size_t count);
/* IEEE binary16 bits of a double (round to nearest even) */
uint16_t vec_half(double value);

#endif

/*
 * A standalone driver for fuzz_decode.c where libFuzzer is not at hand (gcc): the seeds are
 * the test vectors (every valid and invalid message of the file) and any corpus files given;
 * each run takes a seed and applies 1..4 frame-aware mutations (bit flips, interesting values
 * in header and descriptor fields, truncation, extension, dropped, duplicated, swapped or
 * spliced frames) for a bounded time or number of runs.
 *
 *   fuzz_decode [--seconds S] [--runs N] [--seed X] [--write-corpus DIR] VECTORS_OR_FILES...
 *
 * Prints the executions made; a broken property or a sanitizer report aborts (non-zero exit).
 */
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fuzz_decode.h"
#include "vectors.h"

#define FRAME_MAX 1024
#define MAX_SEEDS 4096

typedef struct sample {
    uint8_t data[FUZZ_MAX_FRAMES][FRAME_MAX];
    size_t sizes[FUZZ_MAX_FRAMES];
    int n;
} sample;

static sample seeds[MAX_SEEDS];
static int nseeds = 0;
static uint64_t rng = 1;

static uint64_t next_random(void) {
    uint64_t z = (rng += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static size_t below(size_t n) { return n ? (size_t)(next_random() % n) : 0; }

static double seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* the fuzz input of a sample: per frame a u16 length and its bytes */
static size_t serialize(const sample *s, uint8_t *out) {
    size_t at = 0;
    int i;
    for (i = 0; i < s->n; i++) {
        out[at++] = (uint8_t)s->sizes[i];
        out[at++] = (uint8_t)(s->sizes[i] >> 8);
        memcpy(out + at, s->data[i], s->sizes[i]);
        at += s->sizes[i];
    }
    return at;
}

static void deserialize(sample *s, const uint8_t *data, size_t size) {
    size_t at = 0;
    s->n = 0;
    while (at + 2 <= size && s->n < FUZZ_MAX_FRAMES) {
        size_t length = (size_t)(data[at] | (data[at + 1] << 8));
        at += 2;
        if (length > size - at) length = size - at;
        if (length > FRAME_MAX) length = FRAME_MAX;
        memcpy(s->data[s->n], data + at, length);
        s->sizes[s->n++] = length;
        at += length;
    }
}

static void add_vectors(const char *path) {
    vec_entry *entries;
    size_t count, i;
    char err[256];
    if (vec_load(path, &entries, &count, err, sizeof err) != 0) {
        fprintf(stderr, "fuzz_decode: %s\n", err);
        exit(2);
    }
    for (i = 0; i < count && nseeds < MAX_SEEDS; i++) {
        sample *s = &seeds[nseeds++];
        int k;
        s->n = 0;
        for (k = 0; k < entries[i].nframes && k < FUZZ_MAX_FRAMES; k++) {
            size_t size = entries[i].sizes[k] < FRAME_MAX ? entries[i].sizes[k] : FRAME_MAX;
            if (size) memcpy(s->data[k], entries[i].frames[k], size);
            s->sizes[k] = size;
            s->n++;
        }
    }
    vec_free(entries, count);
}

static void add_file(const char *path) {
    static uint8_t buffer[FUZZ_MAX_FRAMES * (FRAME_MAX + 2)];
    FILE *f = fopen(path, "rb");
    size_t size;
    if (f == NULL) {
        fprintf(stderr, "fuzz_decode: %s: cannot open\n", path);
        exit(2);
    }
    size = fread(buffer, 1, sizeof buffer, f);
    fclose(f);
    if (nseeds < MAX_SEEDS) deserialize(&seeds[nseeds++], buffer, size);
}

static void write_corpus(const char *dir) {
    static uint8_t buffer[FUZZ_MAX_FRAMES * (FRAME_MAX + 2)];
    char path[4096];
    int i;
    for (i = 0; i < nseeds; i++) {
        FILE *f;
        size_t size = serialize(&seeds[i], buffer);
        snprintf(path, sizeof path, "%s/seed-%04d", dir, i);
        f = fopen(path, "wb");
        if (f == NULL || fwrite(buffer, 1, size, f) != size) {
            fprintf(stderr, "fuzz_decode: cannot write %s\n", path);
            exit(2);
        }
        fclose(f);
    }
    printf("fuzz_decode: %d seeds written to %s\n", nseeds, dir);
}

static const uint32_t INTERESTING[] = {0, 1, 2, 3, 4, 7, 8, 9, 10, 11, 12, 13, 15, 16, 63, 64, 65, 127, 128, 255,
                                       256, 4095, 4096, 4097, 0x7FFF, 0x8000, 0xFFFF, 0x10000, 0x7FFFFFFF,
                                       0x80000000u, 0xFFFFFFFFu, 1u << 28, (1u << 28) + 1};

static void mutate(sample *s) {
    int frame = s->n ? (int)below((size_t)s->n) : 0;
    size_t size = s->n ? s->sizes[frame] : 0, at;
    uint32_t value = INTERESTING[below(sizeof INTERESTING / sizeof INTERESTING[0])];
    switch (below(10)) {
    case 0: /* flip a bit */
        if (size) s->data[frame][below(size)] ^= (uint8_t)(1u << below(8));
        break;
    case 1: /* an interesting byte */
        if (size) s->data[frame][below(size)] = (uint8_t)value;
        break;
    case 2: /* an interesting u16 or u32 at a field boundary of the header or a descriptor */
        if (size >= 4) {
            int wide = (int)below(2);
            at = (below(size / 2) * 2) & ~(size_t)(wide ? 3 : 1);
            if (at + (wide ? 4u : 2u) <= size) {
                s->data[frame][at] = (uint8_t)value;
                s->data[frame][at + 1] = (uint8_t)(value >> 8);
                if (wide) {
                    s->data[frame][at + 2] = (uint8_t)(value >> 16);
                    s->data[frame][at + 3] = (uint8_t)(value >> 24);
                }
            }
        }
        break;
    case 3: /* truncate */
        if (size) s->sizes[frame] = below(size);
        break;
    case 4: /* extend */
        if (s->n && size < FRAME_MAX) {
            size_t more = 1 + below(FRAME_MAX - size < 64 ? FRAME_MAX - size : 64);
            for (at = size; at < size + more; at++) s->data[frame][at] = (uint8_t)next_random();
            s->sizes[frame] = size + more;
        }
        break;
    case 5: /* drop a frame */
        if (s->n) {
            memmove(&s->data[frame], &s->data[frame + 1], (size_t)(s->n - frame - 1) * FRAME_MAX);
            memmove(&s->sizes[frame], &s->sizes[frame + 1], (size_t)(s->n - frame - 1) * sizeof(size_t));
            s->n--;
        }
        break;
    case 6: /* duplicate a frame, or add an empty one */
        if (s->n < FUZZ_MAX_FRAMES) {
            if (s->n && below(2)) {
                memcpy(s->data[s->n], s->data[frame], size);
                s->sizes[s->n] = size;
            } else {
                s->sizes[s->n] = 0;
            }
            s->n++;
        }
        break;
    case 7: /* swap two frames */
        if (s->n >= 2) {
            static uint8_t tmp[FRAME_MAX];
            int other = (int)below((size_t)s->n);
            size_t other_size = s->sizes[other];
            memcpy(tmp, s->data[frame], size);
            memcpy(s->data[frame], s->data[other], other_size);
            memcpy(s->data[other], tmp, size);
            s->sizes[frame] = other_size;
            s->sizes[other] = size;
        }
        break;
    case 8: /* splice a frame of another seed */
        if (s->n && nseeds) {
            const sample *donor = &seeds[below((size_t)nseeds)];
            if (donor->n) {
                int k = (int)below((size_t)donor->n);
                memcpy(s->data[frame], donor->data[k], donor->sizes[k]);
                s->sizes[frame] = donor->sizes[k];
            }
        }
        break;
    default: /* the tensor count of the header */
        if (s->n && s->sizes[0] >= 30) {
            s->data[0][28] = (uint8_t)value;
            s->data[0][29] = (uint8_t)(value >> 8);
        }
        break;
    }
}

int main(int argc, char **argv) {
    static sample current;
    static uint8_t input[FUZZ_MAX_FRAMES * (FRAME_MAX + 2)];
    double limit = 10.0, started, elapsed;
    unsigned long long runs = 0, max_runs = 0;
    const char *corpus_out = NULL;
    int i;
    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc) limit = atof(argv[++i]);
        else if (strcmp(argv[i], "--runs") == 0 && i + 1 < argc) max_runs = strtoull(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--seed") == 0 && i + 1 < argc) rng = strtoull(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--write-corpus") == 0 && i + 1 < argc) corpus_out = argv[++i];
        else if (strstr(argv[i], ".txt") != NULL) add_vectors(argv[i]);
        else add_file(argv[i]);
    }
    if (nseeds == 0) {
        fprintf(stderr, "usage: fuzz_decode [--seconds S] [--runs N] [--seed X] [--write-corpus DIR] VECTORS...\n");
        return 2;
    }
    if (corpus_out != NULL) {
        write_corpus(corpus_out);
        return 0;
    }
    started = seconds();
    for (i = 0; i < nseeds; i++) { /* every seed as it is first */
        size_t size = serialize(&seeds[i], input);
        LLVMFuzzerTestOneInput(input, size);
        runs++;
    }
    for (;;) {
        int mutations, k;
        size_t size;
        if ((runs & 255) == 0) {
            elapsed = seconds() - started;
            if (elapsed >= limit) break;
        }
        if (max_runs && runs >= max_runs) break;
        current = seeds[below((size_t)nseeds)];
        mutations = 1 + (int)below(4);
        for (k = 0; k < mutations; k++) mutate(&current);
        size = serialize(&current, input);
        LLVMFuzzerTestOneInput(input, size);
        runs++;
    }
    elapsed = seconds() - started;
    printf("fuzz_decode: %llu executions in %.1f s (%.0f/s) from %d seeds: %lu decodes accepted, %lu refused, "
           "no property broken\n",
           runs, elapsed, runs / (elapsed > 0 ? elapsed : 1), nseeds, fuzz_accepted, fuzz_refused);
    return 0;
}

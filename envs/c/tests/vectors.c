/* Reader of the RLX test-vector file (format: relaax_zmq/protocol/vectors.py). */
#include "vectors.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const size_t SIZES[13] = {0, 1, 1, 1, 2, 2, 4, 4, 8, 8, 2, 4, 8};

uint16_t vec_half(double value) {
    uint16_t sign = signbit(value) ? 0x8000 : 0;
    double a = fabs(value), scaled, floor_part;
    int exponent;
    uint32_t mantissa;
    if (isnan(value)) return (uint16_t)(sign | 0x7E00);
    if (a >= 65520.0) return (uint16_t)(sign | 0x7C00); /* rounds to infinity */
    if (a < ldexp(1.0, -14)) {                          /* subnormal: units of 2^-24 */
        scaled = a * ldexp(1.0, 24);
        floor_part = floor(scaled);
        mantissa = (uint32_t)floor_part;
        if (scaled - floor_part > 0.5 || (scaled - floor_part == 0.5 && (mantissa & 1))) mantissa++;
        return (uint16_t)(sign | mantissa); /* 0x400 carries into the smallest normal */
    }
    frexp(a, &exponent); /* a = f * 2^exponent, f in [0.5, 1) */
    exponent -= 1;       /* a = 1.m * 2^exponent */
    scaled = ldexp(a, 10 - exponent);
    floor_part = floor(scaled);
    mantissa = (uint32_t)floor_part;
    if (scaled - floor_part > 0.5 || (scaled - floor_part == 0.5 && (mantissa & 1))) mantissa++;
    if (mantissa == 2048) {
        mantissa = 1024;
        exponent++;
    }
    if (exponent + 15 >= 31) return (uint16_t)(sign | 0x7C00);
    return (uint16_t)(sign | ((uint32_t)(exponent + 15) << 10) | (mantissa - 1024));
}

static void put_le(uint8_t *out, uint64_t v, size_t size) {
    size_t i;
    for (i = 0; i < size; i++) out[i] = (uint8_t)(v >> (8 * i));
}

static int parse_values(vec_tensor *t, const char *text) {
    size_t elements = 1, size = SIZES[t->dtype], i;
    const char *p = text;
    int d;
    for (d = 0; d < t->ndim; d++) elements *= t->shape[d];
    t->nbytes = elements * size;
    t->bytes = t->nbytes ? (uint8_t *)malloc(t->nbytes) : NULL;
    for (i = 0; i < elements; i++) {
        char *end;
        uint8_t *out = t->bytes + i * size;
        errno = 0;
        if (t->dtype >= 10) {
            double v = strtod(p, &end);
            if (end == p) return -1;
            if (t->dtype == 10) {
                put_le(out, vec_half(v), 2);
            } else if (t->dtype == 11) {
                float f = (float)v;
                memcpy(out, &f, 4);
            } else {
                memcpy(out, &v, 8);
            }
        } else if (*p == '-') {
            long long v = strtoll(p, &end, 10);
            if (end == p || errno) return -1;
            put_le(out, (uint64_t)v, size);
        } else {
            unsigned long long v = strtoull(p, &end, 10);
            if (end == p || errno) return -1;
            put_le(out, (uint64_t)v, size);
        }
        p = end;
        if (*p == ',') p++;
    }
    return *p == '\0' ? 0 : -1;
}

/* the value of key= in a line of "key=value" pairs, copied into out */
static int pair(const char *line, const char *key, char *out, size_t size) {
    size_t klen = strlen(key);
    const char *p = line;
    while ((p = strstr(p, key)) != NULL) {
        if ((p == line || p[-1] == ' ') && p[klen] == '=') {
            size_t n = strcspn(p + klen + 1, " ");
            if (n >= size) return -1;
            memcpy(out, p + klen + 1, n);
            out[n] = '\0';
            return 0;
        }
        p += klen;
    }
    return -1;
}

static int hex_frame(vec_entry *e, const char *hex) {
    size_t n = strlen(hex), i;
    uint8_t *bytes;
    if (n % 2 || e->nframes >= VEC_MAX_FRAMES) return -1;
    bytes = n ? (uint8_t *)malloc(n / 2) : NULL;
    for (i = 0; i < n / 2; i++) {
        unsigned v;
        if (sscanf(hex + 2 * i, "%2x", &v) != 1) {
            free(bytes);
            return -1;
        }
        bytes[i] = (uint8_t)v;
    }
    e->frames[e->nframes] = bytes;
    e->sizes[e->nframes] = n / 2;
    e->nframes++;
    return 0;
}

static int parse_line(vec_entry *e, char *line) {
    char value[8192];
    if (strncmp(line, "header ", 7) == 0) {
        unsigned long long v[6];
        const char *keys[6] = {"version", "type", "flags", "sequence", "session_id", "session_count"};
        int i;
        for (i = 0; i < 6; i++) {
            if (pair(line, keys[i], value, sizeof value)) return -1;
            v[i] = strtoull(value, NULL, 0);
        }
        e->version = (unsigned)v[0];
        e->type = (unsigned)v[1];
        e->flags = (unsigned)v[2];
        e->sequence = v[3];
        e->session_id = v[4];
        e->session_count = (uint32_t)v[5];
        return 0;
    }
    if (strncmp(line, "tensor ", 7) == 0) {
        vec_tensor *t;
        char *p;
        if (e->ntensors >= VEC_MAX_TENSORS) return -1;
        t = &e->tensors[e->ntensors++];
        if (pair(line, "role", value, sizeof value)) return -1;
        t->role = atoi(value);
        if (pair(line, "dtype", value, sizeof value)) return -1;
        t->dtype = atoi(value);
        if (t->dtype < 1 || t->dtype > 12) return -1;
        if (pair(line, "shape", value, sizeof value)) return -1;
        for (p = value; *p && t->ndim < 8; t->ndim++) {
            t->shape[t->ndim] = (uint32_t)strtoul(p, &p, 10);
            if (*p == ',') p++;
        }
        if (pair(line, "values", value, sizeof value)) return -1;
        return parse_values(t, value);
    }
    if (strncmp(line, "error ", 6) == 0) return pair(line, "field", e->error_field, sizeof e->error_field);
    if (strcmp(line, "frame") == 0) return hex_frame(e, "");
    if (strncmp(line, "frame ", 6) == 0) return hex_frame(e, line + 6);
    return -1;
}

int vec_load(const char *path, vec_entry **out, size_t *count, char *err, size_t errlen) {
    FILE *f = fopen(path, "rb");
    char *text, *line, *next;
    long size;
    size_t n = 0, cap = 0, number = 0;
    vec_entry *entries = NULL, *current = NULL;
    if (f == NULL) {
        snprintf(err, errlen, "%s: cannot open", path);
        return -1;
    }
    fseek(f, 0, SEEK_END);
    size = ftell(f);
    fseek(f, 0, SEEK_SET);
    text = (char *)malloc((size_t)size + 1);
    if (fread(text, 1, (size_t)size, f) != (size_t)size) {
        fclose(f);
        free(text);
        snprintf(err, errlen, "%s: cannot read", path);
        return -1;
    }
    fclose(f);
    text[size] = '\0';
    for (line = text; line != NULL; line = next) {
        size_t len;
        next = strchr(line, '\n');
        if (next != NULL) *next++ = '\0';
        number++;
        while (*line == ' ' || *line == '\t') line++;
        len = strlen(line);
        while (len && (line[len - 1] == ' ' || line[len - 1] == '\r' || line[len - 1] == '\t')) line[--len] = '\0';
        if (len == 0 || line[0] == '#') continue;
        if (strncmp(line, "vector ", 7) == 0 || strncmp(line, "invalid ", 8) == 0) {
            if (n == cap) {
                cap = cap ? 2 * cap : 64;
                entries = (vec_entry *)realloc(entries, cap * sizeof *entries);
            }
            current = &entries[n++];
            memset(current, 0, sizeof *current);
            current->valid = line[0] == 'v';
            snprintf(current->name, sizeof current->name, "%s", strchr(line, ' ') + 1);
        } else if (strcmp(line, "end") == 0) {
            current = NULL;
        } else if (current == NULL || parse_line(current, line) != 0) {
            snprintf(err, errlen, "%s:%zu: cannot parse \"%.60s\"", path, number, line);
            free(text);
            vec_free(entries, n);
            return -1;
        }
    }
    free(text);
    *out = entries;
    *count = n;
    return 0;
}

void vec_free(vec_entry *entries, size_t count) {
    size_t i;
    int k;
    for (i = 0; i < count; i++) {
        for (k = 0; k < entries[i].ntensors; k++) free(entries[i].tensors[k].bytes);
        for (k = 0; k < entries[i].nframes; k++) free(entries[i].frames[k]);
    }
    free(entries);
}

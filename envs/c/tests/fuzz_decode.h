/* The reply-decoder fuzz target (fuzz_decode.c) and its input format, shared with the driver. */
#ifndef RLX_FUZZ_DECODE_H
#define RLX_FUZZ_DECODE_H

#include <stddef.h>
#include <stdint.h>

/* An input is a sequence of frames, each a little-endian u16 length and that many bytes
   (a length past the end takes what is left); at most FUZZ_MAX_FRAMES frames. */
#define FUZZ_MAX_FRAMES 16

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* messages the target's decoders accepted and refused so far */
extern unsigned long fuzz_accepted, fuzz_refused;

#endif

/* hex.h - lower-case hex encoding and hex digits. */
#ifndef IG_HEX_H
#define IG_HEX_H

#include <stddef.h>

/* Writes 2n lower-case hex digits of in and a NUL into out (2n + 1 bytes).
 * Can't fail. */
void hex_encode(const unsigned char *in, size_t n, char *out);
/* The value of a hex digit (either case), or -1. */
int hex_digit(char c);

#endif

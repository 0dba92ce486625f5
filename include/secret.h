/* secret.h - freeing what holds a key, a token or a password. */
#ifndef IG_SECRET_H
#define IG_SECRET_H

#include <stddef.h>

/* Frees the len bytes at p, wiped first with OPENSSL_cleanse() so that
 * the secret is not left in freed memory. Accepts NULL. Can't fail. */
void secret_free_n(void *p, size_t len);
/* secret_free_n() of a NUL-terminated string: a key, a token, a header
 * line holding one. Accepts NULL. Can't fail. */
void secret_free(char *s);

#endif

/* secret.c - freeing what holds a key, a token or a password. */
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "secret.h"

void
secret_free_n(void *p, size_t len)
{
	if (p == NULL)
		return;
	/* Not a memset: a store to memory about to be freed may be
	 * optimised away. */
	OPENSSL_cleanse(p, len);
	free(p);
}

void
secret_free(char *s)
{
	if (s != NULL)
		secret_free_n(s, strlen(s));
}

/* whsecret.c - users' sealed webhook signing secrets (see
 * include/whsecret.h). */
#include <string.h>

#include <openssl/crypto.h>

#include "seal.h"
#include "stdwh.h"
#include "uuid.h"
#include "whsecret.h"

/* What a sealed secret is bound to: its table and its owner. */
#define AAD_PREFIX "imagegen webhook_secrets "
#define AAD_MAX (sizeof(AAD_PREFIX) + 36)

/* The associated data of user_id's secret, the id in lower case (as
 * PostgreSQL writes a uuid). Its length, or 0 for a bad id. */
static size_t
aad_of(const char *user_id, char aad[AAD_MAX])
{
	size_t p = strlen(AAD_PREFIX), i;

	if (user_id == NULL || !uuid_valid(user_id))
		return 0;
	memcpy(aad, AAD_PREFIX, p);
	for (i = 0; i < 36; i++) {
		char ch = user_id[i];

		aad[p + i] = ch >= 'A' && ch <= 'F' ? (char)(ch - 'A' + 'a') : ch;
	}
	aad[p + 36] = '\0';
	return p + 36;
}

/* Whether s is a `whsec_` secret with a usable key. */
static int
usable(const char *s)
{
	struct stdwh_key key;
	int ok;

	ok = strncmp(s, STDWH_PREFIX, strlen(STDWH_PREFIX)) == 0 &&
	    stdwh_key_parse(s, &key) == 0;
	stdwh_key_wipe(&key);
	return ok;
}

int
whsecret_key(const struct cfg *c, struct seal_key *k)
{
	memset(k, 0, sizeof(*k));
	if (c == NULL || c->webhook_secret_key == NULL)
		return -1;
	return seal_key_parse(c->webhook_secret_key, k);
}

int
whsecret_seal(const struct seal_key *k, const char *user_id,
    const char *plain, char sealed[SEAL_TEXT_MAX])
{
	char aad[AAD_MAX];
	size_t n = aad_of(user_id, aad);

	sealed[0] = '\0';
	if (n == 0 || plain == NULL || !usable(plain))
		return -1;
	return seal_seal(k, aad, n, plain, sealed, SEAL_TEXT_MAX);
}

int
whsecret_new(const struct seal_key *k, const char *user_id,
    char plain[STDWH_SECRET_MAX], char sealed[SEAL_TEXT_MAX])
{
	sealed[0] = '\0';
	if (stdwh_secret_new(plain, STDWH_SECRET_MAX) != 0 ||
	    whsecret_seal(k, user_id, plain, sealed) != 0) {
		OPENSSL_cleanse(plain, STDWH_SECRET_MAX);
		plain[0] = '\0';
		return -1;
	}
	return 0;
}

int
whsecret_open(const struct seal_key *k, const char *user_id,
    const char *stored, char plain[STDWH_SECRET_MAX], int *legacy)
{
	char aad[AAD_MAX];
	size_t n = aad_of(user_id, aad), len;

	plain[0] = '\0';
	*legacy = 0;
	if (n == 0 || stored == NULL)
		return -1;
	if (!seal_is_sealed(stored)) {
		len = strnlen(stored, STDWH_SECRET_MAX);
		if (len >= STDWH_SECRET_MAX || !usable(stored))
			return -1;
		memcpy(plain, stored, len + 1);
		*legacy = 1;
		return 0;
	}
	if (seal_open(k, aad, n, stored, plain, STDWH_SECRET_MAX) != 0)
		return -1;
	if (!usable(plain)) {
		OPENSSL_cleanse(plain, STDWH_SECRET_MAX);
		plain[0] = '\0';
		return -1;
	}
	return 0;
}

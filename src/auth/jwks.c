/* jwks.c - a cached JSON Web Key Set, fetched with the shared HTTP client. */
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "httpc.h"
#include "jwks.h"
#include "log.h"

struct jwks {
	char *url;
	long ttl, min_refresh;
	struct jwt_key keys[JWKS_MAX_KEYS];
	int nkeys;
	long fetched_at;	/* last successful fetch; 0: never */
	long tried_at;		/* last attempt; 0: never */
	struct httpc http;	/* opened at the first fetch */
};

int
jwks_parse(const char *json, size_t len, struct jwt_key *keys, int max,
    int *skipped)
{
	struct json_object *root = NULL, *arr, *k;
	struct json_tokener *tk;
	const char *why;
	size_t i, n;
	int count = 0;

	*skipped = 0;
	tk = json_tokener_new_ex(16);
	if (tk == NULL)
		return -1;
	root = json_tokener_parse_ex(tk, json, (int)len);
	if (root == NULL || json_tokener_get_error(tk) != json_tokener_success ||
	    !json_object_object_get_ex(root, "keys", &arr) ||
	    !json_object_is_type(arr, json_type_array)) {
		count = -1;
		goto out;
	}
	n = json_object_array_length(arr);
	for (i = 0; i < n; i++) {
		k = json_object_array_get_idx(arr, i);
		if (count == max) {
			(*skipped)++;
			continue;
		}
		if (jwt_key_from_jwk(&keys[count], k, &why) != 0) {
			log_debug("JWKS key %zu skipped: %s", i, why);
			(*skipped)++;
			continue;
		}
		count++;
	}
out:
	json_object_put(root);
	json_tokener_free(tk);
	return count;
}

struct jwks *
jwks_new(const char *url, long ttl, long min_refresh)
{
	struct jwks *j = calloc(1, sizeof(*j));

	if (j == NULL)
		return NULL;
	if (url[0] == '/') {
		j->url = malloc(strlen(url) + sizeof("file://"));
		if (j->url != NULL) {
			memcpy(j->url, "file://", 7);
			memcpy(j->url + 7, url, strlen(url) + 1);
		}
	} else {
		j->url = strdup(url);
	}
	if (j->url == NULL) {
		free(j);
		return NULL;
	}
	j->ttl = ttl;
	j->min_refresh = min_refresh;
	return j;
}

static void
keys_clear(struct jwt_key *keys, int n)
{
	int i;

	for (i = 0; i < n; i++)
		jwt_key_clear(&keys[i]);
}

void
jwks_free(struct jwks *j)
{
	if (j == NULL)
		return;
	keys_clear(j->keys, j->nkeys);
	httpc_close(&j->http);
	free(j->url);
	free(j);
}

int
jwks_count(const struct jwks *j)
{
	return j->nkeys;
}

/* Fetches and replaces the key set; on any failure keeps the old one. */
static void
jwks_fetch(struct jwks *j, long now)
{
	struct jwt_key fresh[JWKS_MAX_KEYS];
	struct httpc_req req = {
		.method = "GET", .url = j->url, .timeout_ms = 5000L,
		.connect_ms = 2000L, .max_bytes = JWKS_MAX_BYTES,
		.flags = HTTPC_FILE | HTTPC_LENGTH_CAP,
		.user_agent = "imagegen-jwks/1",
	};
	struct httpc_reply rep = { 0 };
	int n, skipped = 0;

	memset(fresh, 0, sizeof(fresh));
	j->tried_at = now;
	if (j->http.curl == NULL && httpc_open(&j->http) != 0) {
		log_error("JWKS: cannot make an HTTP client");
		return;
	}
	if (httpc_perform(&j->http, &req, &rep) != HTTPC_OK) {
		log_warn("JWKS fetch failed, keeping %d known keys: %s%s", j->nkeys,
		    rep.error, rep.over ? " (document too large)" : "");
		goto out;
	}
	if (strncmp(j->url, "file:", 5) != 0 && rep.status != 200) {
		log_warn("JWKS fetch answered HTTP %ld, keeping %d known keys",
		    rep.status, j->nkeys);
		goto out;
	}
	n = jwks_parse(rep.body != NULL ? rep.body : "", rep.len, fresh,
	    JWKS_MAX_KEYS, &skipped);
	if (n < 0) {
		log_warn("JWKS document is not {\"keys\":[…]}, keeping %d known keys",
		    j->nkeys);
		goto out;
	}
	keys_clear(j->keys, j->nkeys);
	memcpy(j->keys, fresh, sizeof(fresh));
	j->nkeys = n;
	j->fetched_at = now;
	log_info("JWKS: %d keys loaded, %d skipped", n, skipped);
out:
	httpc_reply_free(&rep);
}

static const struct jwt_key *
find(const struct jwks *j, const char *kid)
{
	int i;

	for (i = 0; i < j->nkeys; i++)
		if (strcmp(j->keys[i].kid, kid) == 0)
			return &j->keys[i];
	return NULL;
}

const struct jwt_key *
jwks_find(struct jwks *j, const char *kid, long now)
{
	const struct jwt_key *k;
	int stale = j->fetched_at == 0 || now - j->fetched_at >= j->ttl;

	/* Refetch when stale or the kid is unknown, but never more than once
	 * per min_refresh: hostile kids can't turn into a fetch storm. */
	k = stale ? NULL : find(j, kid);
	if (k == NULL && (j->tried_at == 0 || now - j->tried_at >= j->min_refresh))
		jwks_fetch(j, now);
	return find(j, kid);
}

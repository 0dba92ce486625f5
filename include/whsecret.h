/*
 * whsecret.h - users' webhook signing secrets as the database keeps them
 * (sql/018_webhook_secret_sealed.sql): a `whsec_` secret sealed with
 * IMAGEGEN_WEBHOOK_SECRET_KEY (seal.h), bound to its owner's user id; or,
 * in a row from before sql/018, the plain `whsec_` text (legacy), which
 * the reader seals and writes back. Shared by the responder (h_webhooks.c)
 * and the deliverer (webhooks.c). Nothing here logs a secret.
 */
#ifndef IG_WHSECRET_H
#define IG_WHSECRET_H

#include "cfg.h"
#include "seal.h"
#include "stdwh.h"

/* What a user is told when the key is not set (503). */
#define WHSECRET_UNSET_MSG "webhook signing is not configured on this " \
	"server (IMAGEGEN_WEBHOOK_SECRET_KEY)"

/* The key of c into *k: 0, or -1 when IMAGEGEN_WEBHOOK_SECRET_KEY is not
 * set (cfg_load() checked its form). Wipe *k with seal_key_wipe(). */
int whsecret_key(const struct cfg *c, struct seal_key *k);

/*
 * A new random `whsec_` secret for user_id (a UUID as the database writes
 * it): the plain secret into plain (STDWH_SECRET_MAX bytes) and its sealed
 * form into sealed (SEAL_TEXT_MAX bytes). 0, or -1 (bad user id, the
 * random source or the cipher failed; both "").
 */
int whsecret_new(const struct seal_key *k, const char *user_id,
    char plain[STDWH_SECRET_MAX], char sealed[SEAL_TEXT_MAX]);

/* plain (a `whsec_` secret) sealed for user_id into sealed. 0, or -1. */
int whsecret_seal(const struct seal_key *k, const char *user_id,
    const char *plain, char sealed[SEAL_TEXT_MAX]);

/*
 * The plain `whsec_` secret of stored, user_id's value as read from the
 * database, into plain: opened when sealed (*legacy = 0), copied when it
 * is a legacy plain secret (*legacy = 1: the caller seals it and writes it
 * back). 0, or -1 when it does not open (another key, another user's row,
 * altered) or is no usable secret (plain "").
 */
int whsecret_open(const struct seal_key *k, const char *user_id,
    const char *stored, char plain[STDWH_SECRET_MAX], int *legacy);

#endif

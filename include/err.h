/* err.h - the application's one error enum and its HTTP mapping. */
#ifndef IG_ERR_H
#define IG_ERR_H

/* Every failure a request can end in. err.c is the only place that knows
 * the HTTP status and the wire code of each; keep the two in step. */
enum ig_err {
	IG_OK = 0,
	IG_EVALIDATION,		/* 400 VALIDATION_ERROR */
	IG_EUNAUTHORIZED,	/* 401 UNAUTHORIZED */
	IG_EBUDGET,		/* 402 BUDGET_EXCEEDED */
	IG_EFORBIDDEN,		/* 403 FORBIDDEN */
	IG_ENOTFOUND,		/* 404 NOT_FOUND */
	IG_EMETHOD,		/* 405 METHOD_NOT_ALLOWED */
	IG_EIDEM_IN_FLIGHT,	/* 409 IDEMPOTENCY_IN_FLIGHT */
	IG_ETOO_LARGE,		/* 413 PAYLOAD_TOO_LARGE */
	IG_EMEDIA_TYPE,		/* 415 UNSUPPORTED_MEDIA_TYPE */
	IG_EIDEM_REUSED,	/* 422 IDEMPOTENCY_KEY_REUSED */
	IG_ERATE_LIMITED,	/* 429 RATE_LIMITED */
	IG_EINTERNAL,		/* 500 INTERNAL */
	IG_EUNAVAILABLE,	/* 503 SERVICE_UNAVAILABLE */
	IG_ERR_COUNT
};

/* HTTP status of e; 500 for an out-of-range value. Can't fail. */
int err_http_status(enum ig_err e);
/* Wire code of e ("NOT_FOUND"); "INTERNAL" for an out-of-range value. */
const char *err_code(enum ig_err e);
/* Default human message of e. */
const char *err_message(enum ig_err e);
/* Reason phrase for an HTTP status ("Not Found"); "Unknown" if unlisted. */
const char *err_reason_phrase(int status);

#endif

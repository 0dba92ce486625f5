/* err.c - the one place that maps enum ig_err to HTTP. */
#include "err.h"

static const struct {
	int status;
	const char *code;
	const char *message;
} err_table[IG_ERR_COUNT] = {
	[IG_OK] = { 200, "OK", "ok" },
	[IG_EVALIDATION] = { 400, "VALIDATION_ERROR", "the request is invalid" },
	[IG_EUNAUTHORIZED] = { 401, "UNAUTHORIZED", "a valid access token is required" },
	[IG_EBUDGET] = { 402, "BUDGET_EXCEEDED", "the spending budget is exhausted" },
	[IG_EFORBIDDEN] = { 403, "FORBIDDEN", "not allowed" },
	[IG_ENOTFOUND] = { 404, "NOT_FOUND", "no such resource" },
	[IG_EMETHOD] = { 405, "METHOD_NOT_ALLOWED", "method not allowed on this resource" },
	[IG_EIDEM_IN_FLIGHT] = { 409, "IDEMPOTENCY_IN_FLIGHT", "a request with this idempotency key is in progress" },
	[IG_ETOO_LARGE] = { 413, "PAYLOAD_TOO_LARGE", "request body too large" },
	[IG_EMEDIA_TYPE] = { 415, "UNSUPPORTED_MEDIA_TYPE", "Content-Type must be application/json" },
	[IG_EIDEM_REUSED] = { 422, "IDEMPOTENCY_KEY_REUSED", "idempotency key reused with a different request" },
	[IG_ERATE_LIMITED] = { 429, "RATE_LIMITED", "too many requests" },
	[IG_EINTERNAL] = { 500, "INTERNAL", "internal error" },
	[IG_EUNAVAILABLE] = { 503, "SERVICE_UNAVAILABLE", "service temporarily unavailable" },
};

static int
err_valid(enum ig_err e)
{
	return (int)e >= 0 && e < IG_ERR_COUNT;
}

int
err_http_status(enum ig_err e)
{
	return err_valid(e) ? err_table[e].status : 500;
}

const char *
err_code(enum ig_err e)
{
	return err_valid(e) ? err_table[e].code : "INTERNAL";
}

const char *
err_message(enum ig_err e)
{
	return err_valid(e) ? err_table[e].message : "internal error";
}

const char *
err_reason_phrase(int status)
{
	switch (status) {
	case 200: return "OK";
	case 201: return "Created";
	case 202: return "Accepted";
	case 204: return "No Content";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 402: return "Payment Required";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 409: return "Conflict";
	case 413: return "Content Too Large";
	case 415: return "Unsupported Media Type";
	case 422: return "Unprocessable Content";
	case 429: return "Too Many Requests";
	case 500: return "Internal Server Error";
	case 503: return "Service Unavailable";
	default: return "Unknown";
	}
}

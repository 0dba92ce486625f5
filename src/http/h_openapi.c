/* h_openapi.c - GET /api/openapi.json: the API's OpenAPI 3.1 document. */
#include <string.h>

#include "app.h"
#include "openapi_doc.h"

/* docs/openapi.json as the build embedded it; no auth, no database. */
enum ig_err
handle_openapi(struct http_req *r)
{
	/* the embedded text has no NUL of its own: strlen() is its length */
	if (strlen((const char *)openapi_doc) != openapi_doc_len)
		return http_fail(r, IG_EINTERNAL, "the embedded document is damaged");
	http_send_json_text(r, 200, (const char *)openapi_doc);
	return IG_OK;
}

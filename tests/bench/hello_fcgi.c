/*
 * hello_fcgi.c - the smallest libfcgi responder: the reference for the
 * cost of the nginx -> FastCGI hop (tests/bench/bench_fcgi_hop).
 *
 * Run under spawn-fcgi, which hands it the listening socket on fd 0:
 *     spawn-fcgi -s SOCK -F N -- tests/bench/hello-fcgi
 * Every request gets 200 and {"status":"ok"}; the body, if any, is not read
 * (FCGX_Finish_r discards it).
 */
#include <stdlib.h>

#include <fcgiapp.h>

int
main(void)
{
	static const char reply[] =
	    "Status: 200 OK\r\n"
	    "Content-Type: application/json\r\n"
	    "\r\n"
	    "{\"status\":\"ok\"}";
	FCGX_Request req;

	if (FCGX_Init() != 0)
		return EXIT_FAILURE;
	if (FCGX_InitRequest(&req, 0, 0) != 0)
		return EXIT_FAILURE;
	while (FCGX_Accept_r(&req) >= 0) {
		FCGX_PutStr(reply, (int)(sizeof(reply) - 1), req.out);
		FCGX_Finish_r(&req);
	}
	return EXIT_SUCCESS;
}

#!/bin/sh
# contrib/apache/imagegen.cgi - the program Apache runs for /api/ and
# /metrics: as a CGI program (contrib/apache/imagegen-cgi.conf) imagegen-fcgi
# answers the one request in its environment and exits; under mod_fcgid
# (contrib/apache/imagegen-fcgid.conf) it serves the listening socket
# mod_fcgid gives it on fd 0 until mod_fcgid stops it.
#
# Install: cp imagegen.cgi /usr/lib/cgi-bin/imagegen/imagegen.cgi (mode 0755,
# owned by root). The settings (DATABASE_URL, SUPABASE_JWT_SECRET, ...; see
# docs/RUNNING.md) are read from the env file IMAGEGEN_ENV_FILE names
# (default /etc/imagegen/imagegen.env, mode 0640 root:www-data: it holds
# secrets, so never under a DocumentRoot). Apache's SetEnv (CGI) or
# FcgidInitialEnv (mod_fcgid) gives IMAGEGEN_FCGI_BIN (default
# /usr/sbin/imagegen-fcgi) and IMAGEGEN_ENV_FILE.
# The request's variables (REQUEST_METHOD, REQUEST_URI, CONTENT_LENGTH,
# HTTP_AUTHORIZATION with CGIPassAuth On, REQUEST_ID) pass through untouched.
IMAGEGEN_ENV_FILE=${IMAGEGEN_ENV_FILE:-/etc/imagegen/imagegen.env}
export IMAGEGEN_ENV_FILE
exec "${IMAGEGEN_FCGI_BIN:-/usr/sbin/imagegen-fcgi}"

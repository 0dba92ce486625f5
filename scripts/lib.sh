# shellcheck shell=bash
# scripts/lib.sh - helpers shared by scripts/build, up, down and test.
# Source it (". scripts/lib.sh"); it sets no shell options of its own.
# Paths and the var/ layout follow docs/RUNNING.md.
# shellcheck disable=SC2034 # the IG_* settings are used by the sourcing scripts

IG_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
IG_VAR=$IG_ROOT/var

IG_HTTPS_PORT=${IMAGEGEN_HTTPS_PORT:-8443}
IG_HTTP_PORT=${IMAGEGEN_HTTP_PORT:-8080}
IG_PG_PORT=${IMAGEGEN_PG_PORT:-54329}

IG_PG_DATA=$IG_VAR/pg/data
IG_PG_RUN=$IG_VAR/pg/run          # Postgres unix socket directory
IG_PG_LOG=$IG_VAR/pg/log
IG_SOCK=$IG_VAR/run/imagegen.sock
IG_POOL_PID=$IG_VAR/run/imagegen-fcgi.pid
IG_POOL_LOG=$IG_VAR/log/imagegen-fcgi.log
IG_NGINX=$IG_VAR/nginx            # nginx prefix: nginx.conf, logs/, temp/
IG_NGINX_PID=$IG_NGINX/logs/nginx.pid   # the "pid" line of nginx/dev.conf.in
IG_APACHE=$IG_VAR/apache          # IMAGEGEN_WEB=apache: httpd.conf, run/, logs/
IG_APACHE_PID=$IG_APACHE/run/httpd.pid
IG_LIGHTTPD=$IG_VAR/lighttpd      # IMAGEGEN_WEB=lighttpd: lighttpd.conf, logs/
IG_LIGHTTPD_PID=$IG_LIGHTTPD/lighttpd.pid
IG_WEB_FILE=$IG_VAR/web           # which web server scripts/up started
IG_TLS=$IG_VAR/tls
IG_STACK_ENV=$IG_VAR/stack.env
IG_SLOTS=$IG_VAR/run/slots         # executor slots (IMAGEGEN_MAX_RUNNING_JOBS)
IG_SPOOL=$IG_VAR/spool             # generated images until stored (IMAGEGEN_SPOOL_DIR)
IG_STORAGE=${IMAGEGEN_STORAGE_DIR:-$IG_VAR/storage}
case $IG_STORAGE in /*) ;; *) IG_STORAGE=$PWD/$IG_STORAGE ;; esac

IG_POOL_USER=www-data             # the pool and nginx workers, when root
IG_PG_SUPERUSER=postgres          # initdb -U; trust auth on the dev cluster

# The Debian packages the build, the stack and the tests need (chromium:
# the demo page's browser test, test_browser.py, drives it headless; clang
# and its runtime libraries, libFuzzer among them: make fuzz).
IG_DEPS=(build-essential autoconf automake pkg-config libfcgi-dev libfcgi-bin
	libcurl4-openssl-dev libpq-dev libjson-c-dev libssl-dev openssl libpng-dev
	libcunit1-dev postgresql nginx-light spawn-fcgi python3 curl wrk valgrind
	procps systemd lighttpd lighttpd-mod-openssl groff-base apache2 libapache2-mod-fcgid
	python3-jsonschema chromium clang libclang-rt-dev)

ig_log() { printf '[%s] %s\n' "${IG_SCRIPT:-imagegen}" "$*"; }
ig_warn() { printf '[%s] warning: %s\n' "${IG_SCRIPT:-imagegen}" "$*" >&2; }
ig_die() { printf '[%s] error: %s\n' "${IG_SCRIPT:-imagegen}" "$*" >&2; exit 1; }

ig_is_root() { [ "$(id -u)" -eq 0 ]; }

# Runs "$@" as the postgres user when root (Postgres refuses to run as
# root), else as ourselves. Runs from / so an unreadable cwd is no issue.
ig_as_postgres() {
	if ig_is_root; then
		(cd / && runuser -u "$IG_PG_SUPERUSER" -- "$@")
	else
		"$@"
	fi
}

# Prints the PostgreSQL server bin dir: 15's, else the newest installed.
ig_pg_bindir() {
	local d best=''
	if [ -x /usr/lib/postgresql/15/bin/pg_ctl ]; then
		echo /usr/lib/postgresql/15/bin
		return 0
	fi
	for d in /usr/lib/postgresql/*/bin; do
		[ -x "$d/pg_ctl" ] || continue
		if [ -z "$best" ] || [ "$(printf '%s\n%s\n' "$best" "$d" | sort -V | tail -n1)" = "$d" ]; then
			best=$d
		fi
	done
	[ -n "$best" ] || { echo "no PostgreSQL server under /usr/lib/postgresql" >&2; return 1; }
	echo "$best"
}

# Prints the pid in FILE when that process is alive (and, given PATTERN,
# its command line contains PATTERN, so a recycled pid is not mistaken for
# ours); returns 1 otherwise.
ig_pid_alive() {
	local file=$1 pattern=${2:-} pid cmd
	[ -r "$file" ] || return 1
	read -r pid <"$file" 2>/dev/null || true
	case $pid in '' | *[!0-9]*) return 1 ;; esac
	kill -0 "$pid" 2>/dev/null || [ -d "/proc/$pid" ] || return 1
	if [ -n "$pattern" ] && [ -r "/proc/$pid/cmdline" ]; then
		cmd=$(tr '\0' ' ' <"/proc/$pid/cmdline")
		case $cmd in *"$pattern"*) ;; *) return 1 ;; esac
	fi
	echo "$pid"
}

# True while PID exists and is not a zombie (an unreaped orphan in a
# container whose init does not reap).
ig_running() {
	local stat
	kill -0 "$1" 2>/dev/null || return 1
	stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
	stat=${stat##*) }
	[ "${stat%% *}" != Z ]
}

# Waits up to SECONDS for PID to exit; returns 1 if it is still there.
ig_wait_gone() {
	local pid=$1 tenths=$(($2 * 10))
	while ig_running "$pid"; do
		[ "$tenths" -gt 0 ] || return 1
		tenths=$((tenths - 1))
		sleep 0.1
	done
}

# True when something accepts TCP connections on 127.0.0.1:PORT.
ig_port_in_use() {
	# shellcheck disable=SC2016 # $0 is expanded by the inner bash
	timeout 2 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$0"' "$1" 2>/dev/null
}

# Prints a TCP port on 127.0.0.1 that is free right now.
ig_free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Prints the pid file and the command-line pattern (for ig_pid_alive) of
# web server NAME (nginx, apache or lighttpd) as scripts/up runs it.
ig_web_pidfile() {
	case $1 in
	nginx) printf '%s\n%s\n' "$IG_NGINX_PID" nginx ;;
	apache) printf '%s\n%s\n' "$IG_APACHE_PID" apache2 ;;
	lighttpd) printf '%s\n%s\n' "$IG_LIGHTTPD_PID" lighttpd ;;
	*) return 1 ;;
	esac
}

# Prints the pid of web server NAME when scripts/up's instance of it runs.
ig_web_alive() {
	local file pattern
	{ read -r file && read -r pattern; } < <(ig_web_pidfile "$1") || return 1
	ig_pid_alive "$file" "$pattern"
}

# Percent-encodes a path for a libpq URI query value.
ig_uri_escape() {
	local s=$1 out='' c i
	for ((i = 0; i < ${#s}; i++)); do
		c=${s:i:1}
		case $c in
		[A-Za-z0-9/._~-]) out+=$c ;;
		*) out+=$(printf '%%%02X' "'$c") ;;
		esac
	done
	printf '%s' "$out"
}

# Prints the stack's postgresql.conf settings (var/pg/data/imagegen.conf)
# for PORT and the unix socket directory RUNDIR. Durable: a 202 promises a
# row that survives a crash of the database host, so fsync and
# synchronous_commit stay on (only the test harness, tests/lib/harness.py,
# trades that for speed).
ig_pg_conf() {
	local port=$1 rundir=$2
	cat <<-EOF
		# written by scripts/up
		listen_addresses = '127.0.0.1'
		port = $port
		unix_socket_directories = '${rundir//\'/\'\'}'
		fsync = on
		synchronous_commit = on
		full_page_writes = on
	EOF
}

# The storage backend the binaries choose from the environment:
# IMAGEGEN_STORAGE, else supabase when SUPABASE_URL and
# SUPABASE_SERVICE_ROLE_KEY are both set, else local (load_jobs() in
# src/core/cfg.c; keep the two in step).
ig_storage_backend() {
	if [ -n "${IMAGEGEN_STORAGE:-}" ]; then
		printf '%s\n' "$IMAGEGEN_STORAGE"
	elif [ -n "${SUPABASE_URL:-}" ] && [ -n "${SUPABASE_SERVICE_ROLE_KEY:-}" ]; then
		echo supabase
	else
		echo local
	fi
}

# Prints the settings scripts/up adds to the pool's environment when the
# caller did not give them, one NAME=VALUE a line, for nginx's HTTPS_PORT:
# - IMAGEGEN_PUBLIC_BASE_URL: where nginx serves local storage, for the
#   local backend only (supabase builds $SUPABASE_URL/storage/v1/object/public,
#   s3 its endpoint, and a local URL there would point at a 404);
# - SUPABASE_JWT_ISSUER: without SUPABASE_URL (which derives it), and only
#   with the stack's own secret (IG_SECRET_LOCAL=1, var/jwt-secret), the
#   local stack's $URL/auth/v1, so tokens are minted and checked with an
#   iss as Supabase's are. A secret brought from a Supabase project keeps
#   accepting that project's tokens, whose iss is not ours.
ig_pool_defaults() {
	local port=$1
	if [ -z "${IMAGEGEN_PUBLIC_BASE_URL:-}" ] && [ "$(ig_storage_backend)" = local ]; then
		printf 'IMAGEGEN_PUBLIC_BASE_URL=%s\n' "https://localhost:$port/storage/v1/object/public"
	fi
	if [ -z "${SUPABASE_JWT_ISSUER:-}" ] && [ -z "${SUPABASE_URL:-}" ] &&
		[ "${IG_SECRET_LOCAL:-0}" = 1 ]; then
		printf 'SUPABASE_JWT_ISSUER=%s\n' "https://localhost:$port/auth/v1"
	fi
}

# Escapes a string for use inside an extended regular expression (pgrep -f).
ig_regex_escape() {
	printf '%s' "$1" | sed 's/[][\.*^$?+(){}|/]/\\&/g'
}

# Installs the packages of IG_DEPS that dpkg-query says are missing, with
# apt-get as root, else through "sudo -n"; without either it prints the
# command to run and exits 1. IMAGEGEN_SKIP_DEPS=1 skips the whole step.
ig_install_deps() {
	local p missing=() sudo=() port80=0 port5432=0
	if [ "${IMAGEGEN_SKIP_DEPS:-0}" = 1 ]; then
		ig_log "deps: skipped (IMAGEGEN_SKIP_DEPS=1)"
		return 0
	fi
	if ! command -v dpkg-query >/dev/null 2>&1; then
		ig_warn "deps: not a Debian system; make sure these (or equivalents) are installed: ${IG_DEPS[*]}"
		return 0
	fi
	for p in "${IG_DEPS[@]}"; do
		if [ "$p" = nginx-light ] && ig_pkg_installed nginx-core nginx-full nginx-extras; then
			continue        # another nginx flavour is there: don't swap it
		fi
		ig_pkg_installed "$p" || missing+=("$p")
	done
	# Node.js runs the tests' independent JOSE implementation (tests/node).
	# A node that is already there (Debian's or NodeSource's, which bundles
	# npm) is used as it is: Debian's npm would conflict with NodeSource.
	command -v node >/dev/null 2>&1 || missing+=(nodejs)
	command -v npm >/dev/null 2>&1 || missing+=(npm)
	if [ "${#missing[@]}" -eq 0 ]; then
		ig_log "deps: all ${#IG_DEPS[@]} packages present"
		return 0
	fi
	if ! ig_is_root; then
		if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
			sudo=(sudo -n)
		else
			printf '[%s] missing packages: %s\n' "${IG_SCRIPT:-imagegen}" "${missing[*]}" >&2
			printf 'Run this as root (or with sudo), then try again:\n  apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends %s\n' \
				"${missing[*]}" >&2
			exit 1
		fi
	fi
	ig_port_in_use 80 && port80=1
	ig_port_in_use 5432 && port5432=1
	ig_log "deps: installing ${missing[*]}"
	"${sudo[@]}" apt-get update -q || ig_die "apt-get update failed"
	"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
		--no-install-recommends "${missing[@]}" || ig_die "apt-get install failed"
	# The packages may have started their distro services; we run our own.
	# lighttpd's first: when it took port 80, nginx's could not have.
	for p in "${missing[@]}"; do
		if [ "$p" = lighttpd ] && [ "$port80" = 0 ]; then
			ig_stop_distro_service lighttpd 80 "${sudo[@]}"
		fi
	done
	for p in "${missing[@]}"; do
		case $p in
		nginx*) [ "$port80" = 1 ] || ig_stop_distro_service nginx 80 "${sudo[@]}" ;;
		apache2) [ "$port80" = 1 ] || ig_stop_distro_service apache2 80 "${sudo[@]}" ;;
		postgresql*) [ "$port5432" = 1 ] || ig_stop_distro_service postgresql 5432 "${sudo[@]}" ;;
		esac
	done
}

# True when any of the named packages is installed.
ig_pkg_installed() {
	local p
	for p in "$@"; do
		[ "$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null)" = installed ] && return 0
	done
	return 1
}

# Stops SERVICE when something now listens on PORT (the install started it).
# Works with and without systemd; never fails.
ig_stop_distro_service() {
	local svc=$1 port=$2
	shift 2
	ig_port_in_use "$port" || return 0
	ig_log "deps: stopping the $svc service the package started on port $port"
	if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
		"$@" systemctl stop "$svc" >/dev/null 2>&1 || true
	fi
	if ig_port_in_use "$port" && command -v service >/dev/null 2>&1; then
		"$@" service "$svc" stop >/dev/null 2>&1 || true
	fi
	if ig_port_in_use "$port" && [ "$svc" = postgresql ] && command -v pg_lsclusters >/dev/null 2>&1; then
		local ver name _rest
		while read -r ver name _rest; do
			"$@" pg_ctlcluster "$ver" "$name" stop >/dev/null 2>&1 || true
		done < <(pg_lsclusters --no-header 2>/dev/null)
	fi
	if ig_port_in_use "$port"; then
		ig_warn "deps: port $port is still in use after stopping $svc"
	fi
	return 0
}

/*
 * local.c - the offline provider: renders a PNG of the requested size,
 * deterministic for a prompt, costing nothing (SPEC §6). For development
 * and tests, and the default when no API key is set.
 *
 * Failure hook, for tests only: with IMAGEGEN_TEST_FAULTS=1, a prompt that
 * starts with exactly "[[fail:CODE]]", CODE one of the prov_err_code()
 * names (AUTH_ERROR, RATE_LIMIT, TEMPORARY, TIMEOUT, INVALID_REQUEST,
 * CONTENT_POLICY, NO_IMAGE, PROVIDER_ERROR), fails the attempt with that
 * code and the message "local provider: forced CODE", after the configured
 * delay. It lets end-to-end tests drive every failure path of the runner
 * offline. An unknown CODE is an INVALID_REQUEST, so a typo in a test does
 * not render a picture. Off (the default), such a prompt is a prompt like
 * any other: no API user can make the service fail on purpose.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <png.h>

#include "log.h"
#include "clock.h"
#include "prov_local.h"
#include "provider.h"
#include "settings.h"

#define LOCAL_MODEL "local-renderer-1"
#define LOCAL_FAIL_PREFIX "[[fail:"
#define LOCAL_MIN_SIDE 64
#define LOCAL_MAX_SIDE 4096

struct local_state {
	long delay_ms;		/* IMAGEGEN_LOCAL_DELAY_MS */
	int faults;		/* IMAGEGEN_TEST_FAULTS: the failure hook is on */
};

/* The picture's parameters, all drawn from the prompt's hash. */
struct local_scene {
	int c0[3], c1[3];	/* gradient end colours */
	int kx, ky;		/* gradient direction weights, 1-4 */
	uint64_t cells;		/* 8x8 grid of tinted cells, one bit each */
	int cx, cy;		/* ring centre */
	int ring_shift;		/* rings are 2^ring_shift pixels wide */
};

/* A growable output buffer for png_set_write_fn. */
struct local_membuf {
	unsigned char *data;
	size_t len, cap;
};

/* Sleeps until CLOCK_MONOTONIC reaches at_ms, resuming after signals. */
static void
local_sleep_until(long long at_ms)
{
	struct timespec ts;
	int rc;

	ts.tv_sec = (time_t)(at_ms / 1000);
	ts.tv_nsec = (long)(at_ms % 1000) * 1000000;
	do {
		rc = clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
	} while (rc == EINTR);
}

/* FNV-1a, then a splitmix64 finaliser so nearby prompts spread apart. */
static uint64_t
local_hash(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	for (; *s != '\0'; s++) {
		h ^= (unsigned char)*s;
		h *= 0x100000001b3ULL;
	}
	h ^= h >> 30;
	h *= 0xbf58476d1ce4e5b9ULL;
	h ^= h >> 27;
	h *= 0x94d049bb133111ebULL;
	h ^= h >> 31;
	return h;
}

/* The next value of a splitmix64 sequence seeded with *st. */
static uint64_t
local_next(uint64_t *st)
{
	uint64_t z;

	*st += 0x9e3779b97f4a7c15ULL;
	z = *st;
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static void
local_scene_make(struct local_scene *sc, const char *prompt, int w, int h)
{
	uint64_t st = local_hash(prompt), r;
	int i;

	r = local_next(&st);
	/* c1 is c0 turned 96-159 steps round the colour wheel of each
	 * channel, so the gradient always shows. */
	for (i = 0; i < 3; i++) {
		sc->c0[i] = (int)((r >> (8 * i)) & 0xff);
		sc->c1[i] = (sc->c0[i] + 96 + (int)((r >> (6 * i + 24)) & 63)) & 0xff;
	}
	r = local_next(&st);
	sc->kx = 1 + (int)(r & 3);
	sc->ky = 1 + (int)((r >> 2) & 3);
	sc->cx = (int)((r >> 8) % (uint64_t)w);
	sc->cy = (int)((r >> 24) % (uint64_t)h);
	/* 16-128 pixel rings, wider on larger images. */
	sc->ring_shift = 4 + (int)((r >> 40) & 1) + (w + h > 2048 ? 2 : 0);
	sc->cells = local_next(&st);
}

/*
 * One row of 8-bit RGB: a diagonal gradient from c0 to c1, an 8x8 grid of
 * cells tinted by the hash's bits (so different prompts look different at
 * a glance) and rings around (cx, cy) on an octagonal distance (max + min
 * / 2, within 12% of the true one and free of a square root). Integer
 * arithmetic only,
 * so the bytes are the same on every machine. tx[x] holds the column's
 * share of the gradient, 16.8 fixed point.
 */
static void
local_render_row(const struct local_scene *sc, const uint32_t *tx,
    uint32_t ty, int w, int h, int y, unsigned char *row)
{
	int x, i, t, v, band, acc = 0, dx, dy = abs(y - sc->cy), dist;
	uint64_t bits = sc->cells >> (y * 8 / h * 8);

	for (x = 0; x < w; x++) {
		t = (int)((tx[x] + ty) >> 8);
		dx = abs(x - sc->cx);
		dist = dx > dy ? dx + dy / 2 : dy + dx / 2;
		band = ((dist >> sc->ring_shift) & 1) ? 18 : 0;
		if (bits & 1)
			band += 24;
		/* Next cell column once x * 8 / w steps up, without dividing. */
		acc += 8;
		if (acc >= w) {
			acc -= w;
			bits >>= 1;
		}
		for (i = 0; i < 3; i++) {
			v = sc->c0[i] + (sc->c1[i] - sc->c0[i]) * t / 255 + band;
			row[3 * x + i] = (unsigned char)(v > 255 ? 255 : v);
		}
	}
}

/* libpng's write callback: appends to the local_membuf behind io_ptr,
 * doubling it; png_error() (a longjmp) when memory runs out. */
static void
local_png_write(png_structp png, png_bytep data, png_size_t len)
{
	struct local_membuf *mb = png_get_io_ptr(png);
	unsigned char *n;
	size_t cap;

	if (len > mb->cap - mb->len) {
		cap = mb->cap != 0 ? mb->cap : 4096;
		while (len > cap - mb->len) {
			if (cap > SIZE_MAX / 2)
				png_error(png, "output too large");
			cap *= 2;
		}
		n = realloc(mb->data, cap);
		if (n == NULL)
			png_error(png, "out of memory");
		mb->data = n;
		mb->cap = cap;
	}
	memcpy(mb->data + mb->len, data, len);
	mb->len += len;
}

static void
local_png_flush(png_structp png)
{
	(void)png;
}

/* libpng reports a fatal error here and must not return: log it and jump
 * back to local_encode()'s setjmp. */
static void
local_png_error(png_structp png, png_const_charp msg)
{
	log_warn("libpng: %s", msg);
	png_longjmp(png, 1);
}

static void
local_png_warning(png_structp png, png_const_charp msg)
{
	(void)png;
	log_debug("libpng: %s", msg);
}

/*
 * Renders the scene as a w x h 8-bit RGB PNG into mb. 0, or -1 (after
 * logging why) with whatever mb holds left for the caller to free.
 *
 * setjmp discipline: png, info, tx and row are set before setjmp() and
 * never changed after it, so they keep their values across a longjmp. rc
 * changes after setjmp(), so it is volatile. The bytes written so far
 * live in *mb, the caller's object, which a longjmp leaves alone.
 */
static int
local_encode(const struct local_scene *sc, int w, int h,
    struct local_membuf *mb)
{
	png_structp png = NULL;
	png_infop info = NULL;
	unsigned char *row = NULL;
	uint32_t *tx = NULL;
	uint32_t den, ty;
	volatile int rc = -1;
	int x, y;

	row = malloc((size_t)w * 3);
	tx = malloc((size_t)w * sizeof(*tx));
	if (row == NULL || tx == NULL) {
		log_warn("out of memory for a %dx%d image", w, h);
		goto out;
	}
	png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL,
	    local_png_error, local_png_warning);
	if (png == NULL)
		goto out;
	info = png_create_info_struct(png);
	if (info == NULL)
		goto out;
	if (setjmp(png_jmpbuf(png)) != 0)
		goto out;
	png_set_write_fn(png, mb, local_png_write, local_png_flush);
	/* Speed over size: level 1 and one fixed filter instead of libpng's
	 * adaptive choice, which tries all five on every row. SUB suits a
	 * smooth horizontal gradient. */
	png_set_compression_level(png, 1);
	png_set_filter(png, PNG_FILTER_TYPE_BASE, PNG_FILTER_SUB);
	png_set_IHDR(png, info, (png_uint_32)w, (png_uint_32)h, 8,
	    PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_BASE,
	    PNG_FILTER_TYPE_BASE);
	png_write_info(png, info);
	/* 255 * 256 * (x*kx + y*ky) / (w*kx + h*ky) splits into a column
	 * and a row term; at most 255 * 256 * 4 * 4096 * 2 < 2^32. */
	den = (uint32_t)((w - 1) * sc->kx + (h - 1) * sc->ky);
	if (den == 0)
		den = 1;
	for (x = 0; x < w; x++)
		tx[x] = (uint32_t)(255u * 256u * (uint32_t)(x * sc->kx) / den);
	for (y = 0; y < h; y++) {
		ty = (uint32_t)(255u * 256u * (uint32_t)(y * sc->ky) / den);
		local_render_row(sc, tx, ty, w, h, y, row);
		png_write_row(png, row);
	}
	png_write_end(png, info);
	rc = 0;
out:
	png_destroy_write_struct(&png, &info);
	free(tx);
	free(row);
	return rc;
}

/* The code a "[[fail:CODE]]" prompt forces: PROV_OK when the prompt has no
 * such prefix, PROV_ERR_COUNT when CODE is not a known name. */
static enum prov_err
local_forced(const char *prompt, const char **code, size_t *codelen)
{
	const char *s, *end;
	int e;

	if (strncmp(prompt, LOCAL_FAIL_PREFIX, strlen(LOCAL_FAIL_PREFIX)) != 0)
		return PROV_OK;
	s = prompt + strlen(LOCAL_FAIL_PREFIX);
	end = strstr(s, "]]");
	*code = s;
	*codelen = end != NULL ? (size_t)(end - s) : strlen(s);
	if (end == NULL)
		return PROV_ERR_COUNT;
	for (e = PROV_OK + 1; e < PROV_ERR_COUNT; e++) {
		if (strlen(prov_err_code(e)) == *codelen &&
		    strncmp(prov_err_code(e), s, *codelen) == 0)
			return (enum prov_err)e;
	}
	return PROV_ERR_COUNT;
}

static int
local_open(struct provider *p, const struct cfg *c, char *err,
    size_t errlen)
{
	static const struct prov_local_conf none;
	const struct prov_local_conf *lc = c->provider_conf != NULL ?
	    c->provider_conf : &none;
	struct local_state *st;

	st = calloc(1, sizeof(*st));
	if (st == NULL) {
		snprintf(err, errlen, "IMAGEGEN_PROVIDER: out of memory");
		return -1;
	}
	st->delay_ms = lc->delay_ms > 0 ? lc->delay_ms : 0;
	st->faults = lc->test_faults == 1;
	p->state = st;
	snprintf(p->model, sizeof(p->model), "%s", LOCAL_MODEL);
	return 0;
}

static void
local_close(struct provider *p)
{
	free(p->state);
	p->state = NULL;
}

/*
 * Waits the configured delay, then answers: a forced failure, a refusal of
 * a bad request, or the rendered PNG (res->data malloc'd; the caller frees
 * it with prov_result_free()). A delay that would pass req->deadline_ms
 * waits until the deadline and returns PROV_TIMEOUT, like a real call that
 * timed out.
 */
static enum prov_err
local_generate(struct provider *p, const struct prov_request *req,
    struct prov_result *res)
{
	const struct local_state *st = p->state;
	struct local_membuf mb = { NULL, 0, 0 };
	struct local_scene sc;
	const char *code = NULL;
	size_t codelen = 0;
	long long start = clock_mono_ms();
	enum prov_err e;

	if (req->deadline_ms != 0 && start >= req->deadline_ms) {
		snprintf(res->message, sizeof(res->message),
		    "local provider: deadline passed before the call");
		e = PROV_TIMEOUT;
		goto out;
	}
	if (st != NULL && st->delay_ms > 0) {
		if (req->deadline_ms != 0 &&
		    start + st->delay_ms > req->deadline_ms) {
			local_sleep_until(req->deadline_ms);
			snprintf(res->message, sizeof(res->message),
			    "local provider: a %ld ms delay passes the deadline",
			    st->delay_ms);
			e = PROV_TIMEOUT;
			goto out;
		}
		local_sleep_until(start + st->delay_ms);
	}
	if (req->prompt == NULL) {
		snprintf(res->message, sizeof(res->message),
		    "local provider: no prompt");
		e = PROV_INVALID_REQUEST;
		goto out;
	}
	/* Only a test deployment lets a prompt choose the answer. */
	e = st != NULL && st->faults ? local_forced(req->prompt, &code, &codelen) :
	    PROV_OK;
	if (e == PROV_ERR_COUNT) {
		snprintf(res->message, sizeof(res->message),
		    "local provider: unknown forced code '%.*s'",
		    (int)(codelen > 40 ? 40 : codelen), code);
		e = PROV_INVALID_REQUEST;
		goto out;
	}
	if (e != PROV_OK) {
		snprintf(res->message, sizeof(res->message),
		    "local provider: forced %s", prov_err_code(e));
		goto out;
	}
	if (req->width < LOCAL_MIN_SIDE || req->width > LOCAL_MAX_SIDE ||
	    req->height < LOCAL_MIN_SIDE || req->height > LOCAL_MAX_SIDE) {
		snprintf(res->message, sizeof(res->message),
		    "local provider: size %dx%d outside %d-%d", req->width,
		    req->height, LOCAL_MIN_SIDE, LOCAL_MAX_SIDE);
		e = PROV_INVALID_REQUEST;
		goto out;
	}
	local_scene_make(&sc, req->prompt, req->width, req->height);
	if (local_encode(&sc, req->width, req->height, &mb) != 0) {
		snprintf(res->message, sizeof(res->message),
		    "local provider: PNG encoding failed");
		e = PROV_PROVIDER_ERROR;
		goto out;
	}
	if (req->deadline_ms != 0 && clock_mono_ms() > req->deadline_ms) {
		snprintf(res->message, sizeof(res->message),
		    "local provider: rendering passed the deadline");
		e = PROV_TIMEOUT;
		goto out;
	}
	res->data = mb.data;
	res->len = mb.len;
	mb.data = NULL;
	snprintf(res->mime, sizeof(res->mime), "image/png");
	res->width = req->width;
	res->height = req->height;
	/* The price table's (free, unless a fixed price replaces it). */
	res->cost_usd = prov_cost_estimate("local", p->model, req->width,
	    req->height);
	e = PROV_OK;
out:
	free(mb.data);
	return e;
}

static const struct setting local_settings[] = {
	{ "NANO_BANANA_MODEL", SET_STR, LOCAL_MODEL, 0, 0,
	  offsetof(struct prov_local_conf, model), 0, NULL, NULL,
	  "recorded on jobs (the local renderer draws the same whatever it is)" },
	{ "IMAGEGEN_LOCAL_DELAY_MS", SET_LONG, "0", 0, 600000,
	  offsetof(struct prov_local_conf, delay_ms), 0, NULL, NULL,
	  "the local provider waits this long per image (tests)" },
	{ "IMAGEGEN_TEST_FAULTS", SET_LONG, "0", 0, 1,
	  offsetof(struct prov_local_conf, test_faults), SET_TEST, NULL, NULL,
	  "`1` lets a prompt starting `[[fail:CODE]]` (a "
	  "provider error code) make the local provider fail with that code; "
	  "off, such a prompt renders like any other" },
	{ NULL, 0, NULL, 0, 0, 0, 0, NULL, NULL, NULL }
};

static const char *
local_model(const void *conf)
{
	const struct prov_local_conf *lc = conf;

	return lc->model;
}

/* The fallback: chosen when no other provider's default_if holds. */
static const char *const local_default_if[] = { NULL };

/* Offline rendering is free, whatever the model is called. */
static const struct prov_price local_prices[] = {
	{ NULL, 0, 0.0, 0, 0, 0, 0 },
};

const struct prov_ops prov_local = {
	.name = "local",
	.about = "an offline renderer (no network, no key)",
	.settings = local_settings,
	.conf_size = sizeof(struct prov_local_conf),
	.default_if = local_default_if,
	.model = local_model,
	.model_var = "NANO_BANANA_MODEL",
	.prices = local_prices,
	.n_prices = sizeof(local_prices) / sizeof(local_prices[0]),
	.open = local_open,
	.close = local_close,
	.generate = local_generate,
};

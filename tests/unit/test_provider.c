/* test_provider.c - the provider table, prices, image sniffing and the
 * local renderer. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cu_main.h"
#include "prov_local.h"
#include "provider.h"

#define PRICE_EPS 1e-9

/* The row itself (provider.h no longer declares the rows). */
extern const struct prov_ops prov_local;

static long long
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Opens the local provider with a delay, its failure hook on when
 * faults (IMAGEGEN_TEST_FAULTS); CUnit-asserts it worked. */
static int
open_local_faults(struct provider *p, long delay_ms, int faults)
{
	struct prov_local_conf lc;
	struct cfg c;
	char err[256] = "";
	int rc;

	memset(&c, 0, sizeof(c));
	memset(&lc, 0, sizeof(lc));
	c.provider = "local";
	c.provider_conf = &lc;
	lc.delay_ms = delay_ms;
	lc.test_faults = faults;
	rc = prov_open(p, &c, err, sizeof(err));
	CU_ASSERT_EQUAL(rc, 0);
	CU_ASSERT_STRING_EQUAL(err, "");
	return rc;
}

/* The local provider as deployed: no failure hook. */
static int
open_local(struct provider *p, long delay_ms)
{
	return open_local_faults(p, delay_ms, 0);
}

/* One attempt at the local provider; the result is the caller's. */
static enum prov_err
gen_local(struct provider *p, const char *prompt, int w, int h,
    long long deadline, struct prov_result *res)
{
	struct prov_request rq;

	memset(&rq, 0, sizeof(rq));
	rq.job_type = "master_asset";
	rq.prompt = prompt;
	rq.width = w;
	rq.height = h;
	rq.deadline_ms = deadline;
	return prov_generate(p, &rq, res);
}

/* prov_image_sniff on an exact-size heap copy, so a read past len is a
 * valgrind or ASan error rather than a lucky read of the next byte. */
static int
sniff_copy(const unsigned char *d, size_t len, const char **mime, int *w,
    int *h)
{
	unsigned char *c = malloc(len == 0 ? 1 : len);
	int rc;

	if (c == NULL)
		return -2;
	if (len > 0)
		memcpy(c, d, len);
	rc = prov_image_sniff(c, len, mime, w, h);
	free(c);
	return rc;
}

/* Every prefix of d shorter than need is refused; need and longer ones
 * give (mime, w, h). */
static void
check_prefixes(const unsigned char *d, size_t len, size_t need,
    const char *mime_want, int w_want, int h_want)
{
	const char *mime;
	size_t n;
	int w, h, rc;

	for (n = 0; n <= len; n++) {
		mime = NULL;
		w = h = -7;
		rc = sniff_copy(d, n, &mime, &w, &h);
		if (n < need) {
			CU_ASSERT_EQUAL(rc, -1);
		} else {
			CU_ASSERT_EQUAL(rc, 0);
			CU_ASSERT_PTR_NOT_NULL_FATAL(mime);
			CU_ASSERT_STRING_EQUAL(mime, mime_want);
			CU_ASSERT_EQUAL(w, w_want);
			CU_ASSERT_EQUAL(h, h_want);
		}
	}
}

/* Every single-byte change of d: any answer but no stray read, and a
 * size, when there is one, that is positive. */
static void
check_mutations(const unsigned char *d, size_t len)
{
	unsigned char *c = malloc(len);
	static const unsigned char vals[] = { 0x00, 0x01, 0x7f, 0xfe, 0xff };
	const char *mime;
	size_t i, v;
	int w, h;

	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	for (i = 0; i < len; i++) {
		for (v = 0; v < sizeof(vals); v++) {
			memcpy(c, d, len);
			c[i] = vals[v];
			if (prov_image_sniff(c, len, &mime, &w, &h) == 0)
				CU_ASSERT(w > 0 && h > 0);
		}
	}
	free(c);
}

/* ---- error codes and prices ------------------------------------------- */

static void
test_prov_err_code_table(void)
{
	static const struct { enum prov_err e; const char *code; } v[] = {
		{ PROV_OK, "OK" },
		{ PROV_AUTH_ERROR, "AUTH_ERROR" },
		{ PROV_RATE_LIMIT, "RATE_LIMIT" },
		{ PROV_TEMPORARY, "TEMPORARY" },
		{ PROV_TIMEOUT, "TIMEOUT" },
		{ PROV_INVALID_REQUEST, "INVALID_REQUEST" },
		{ PROV_CONTENT_POLICY, "CONTENT_POLICY" },
		{ PROV_NO_IMAGE, "NO_IMAGE" },
		{ PROV_PROVIDER_ERROR, "PROVIDER_ERROR" },
	};
	size_t i;

	for (i = 0; i < sizeof(v) / sizeof(v[0]); i++)
		CU_ASSERT_STRING_EQUAL(prov_err_code(v[i].e), v[i].code);
	CU_ASSERT_STRING_EQUAL(prov_err_code(PROV_ERR_COUNT), "PROVIDER_ERROR");
	CU_ASSERT_STRING_EQUAL(prov_err_code((enum prov_err)-1), "PROVIDER_ERROR");
	CU_ASSERT_STRING_EQUAL(prov_err_code((enum prov_err)1000),
	    "PROVIDER_ERROR");
}

static void
test_prov_err_retryable_set(void)
{
	int e;

	for (e = 0; e <= PROV_ERR_COUNT; e++)
		CU_ASSERT_EQUAL(prov_err_retryable((enum prov_err)e),
		    e == PROV_RATE_LIMIT || e == PROV_TEMPORARY ||
		    e == PROV_TIMEOUT);
}

static void
test_cost_estimate_table(void)
{
	static const struct {
		const char *prov, *model;
		int w, h;
		double usd;
	} v[] = {
		{ "gemini", "gemini-2.5-flash-image", 1024, 1024, 0.039 },
		{ "gemini", "gemini-2.5-flash-image", 4096, 4096, 0.039 },
		{ "gemini", "gemini-2.5-flash-image-preview", 1344, 768, 0.039 },
		/* Gemini 3 Pro: 1K and 2K one price, 4K another */
		{ "gemini", "gemini-3-pro-image-preview", 1024, 1024, 0.134 },
		{ "gemini", "gemini-3-pro-image-preview", 2048, 2048, 0.134 },
		{ "gemini", "gemini-3-pro-image-preview", 2048, 1152, 0.134 },
		{ "gemini", "gemini-3-pro-image-preview", 1152, 2048, 0.134 },
		{ "gemini", "gemini-3-pro-image-preview", 2049, 64, 0.24 },
		{ "gemini", "gemini-3-pro-image-preview", 64, 2049, 0.24 },
		{ "gemini", "gemini-3-pro-image-preview", 4096, 4096, 0.24 },
		{ "gemini", "gemini-3-pro-image-preview", 4096, 2304, 0.24 },
		{ "gemini", "gemini-3-pro-image", 1024, 1024, 0.134 },
		{ "gemini", "gemini-3-pro-image", 4096, 4096, 0.24 },
		/* an unknown model has no price: -1, never a guess */
		{ "gemini", "gemini-9-ultra-image", 4096, 4096, -1 },
		{ "gemini", NULL, 1024, 1024, -1 },
		{ "openai", "gpt-image-1", 1024, 1024, 0.042 },
		{ "openai", "gpt-image-1", 1536, 1024, 0.063 },
		{ "openai", NULL, 1024, 1024, -1 },
		{ "openai", "some-gateway-model", 1024, 1024, -1 },
		{ "openai", "gemini-2.5-flash-image", 1024, 1024, 0.039 },
		/* a gateway passing Google's model names through */
		{ "openai", "gemini-3-pro-image-preview", 4096, 4096, 0.24 },
		{ "openai", "gemini-3-pro-image-preview", 1024, 1024, 0.134 },
		/* local is free, whatever the model */
		{ "local", "local-renderer-1", 1024, 1024, 0.0 },
		{ "local", "gemini-3-pro-image-preview", 4096, 4096, 0.0 },
		{ "local", NULL, 64, 64, 0.0 },
		/* can't fail */
		{ "nonesuch", "x", 1024, 1024, -1 },
		{ "nonesuch", "gemini-2.5-flash-image", 1024, 1024, 0.039 },
		{ NULL, NULL, 0, 0, -1 },
	};
	size_t i;

	for (i = 0; i < sizeof(v) / sizeof(v[0]); i++)
		CU_ASSERT_DOUBLE_EQUAL(prov_cost_estimate(v[i].prov, v[i].model,
		    v[i].w, v[i].h), v[i].usd, PRICE_EPS);
}

/* The variables the price tests set, cleared before and after each. */
static const char *const price_vars[] = {
	"IMAGEGEN_ENV_FILE", "IMAGEGEN_PROVIDER", "NANO_BANANA_API_KEY",
	"NANO_BANANA_API_URL", "NANO_BANANA_MODEL", "IMAGEGEN_PRICE_PER_IMAGE_USD",
	NULL
};

static void
price_env_clear(void)
{
	size_t i;

	for (i = 0; price_vars[i] != NULL; i++)
		unsetenv(price_vars[i]);
}

/* cfg_load() of provider with model (NULL: its default) and price (NULL:
 * unset); returns its result, err the refusal. */
static int
price_cfg(struct cfg *c, const char *provider, const char *model,
    const char *price, char *err, size_t errlen)
{
	int rc;

	price_env_clear();
	setenv("IMAGEGEN_PROVIDER", provider, 1);
	if (strcmp(provider, "local") != 0)
		setenv("NANO_BANANA_API_KEY", "test-key-not-secret", 1);
	if (model != NULL)
		setenv("NANO_BANANA_MODEL", model, 1);
	if (price != NULL)
		setenv("IMAGEGEN_PRICE_PER_IMAGE_USD", price, 1);
	err[0] = '\0';
	rc = cfg_load(c, NULL, 0, err, errlen);
	price_env_clear();
	return rc;
}

/* A model the price table does not know is refused at start, naming the
 * model variable and the override, rather than priced by a guess. */
static void
test_price_unknown_model_refused(void)
{
	static const char *const provs[] = { "gemini", "openai" };
	char err[512], want[512];
	struct cfg c;
	size_t i;

	for (i = 0; i < 2; i++) {
		CU_ASSERT_EQUAL(price_cfg(&c, provs[i], "some-unknown-model", NULL,
		    err, sizeof(err)), -1);
		snprintf(want, sizeof(want), "NANO_BANANA_MODEL: no price for "
		    "model 'some-unknown-model' of IMAGEGEN_PROVIDER=%s; set "
		    "IMAGEGEN_PRICE_PER_IMAGE_USD to what one image costs",
		    provs[i]);
		CU_ASSERT_STRING_EQUAL(err, want);
		CU_ASSERT_PTR_NULL(strchr(err, '\n'));
		CU_ASSERT_PTR_NULL(c.provider);	/* *out left zeroed */
	}
	/* the override makes it start, and prices it */
	CU_ASSERT_EQUAL_FATAL(price_cfg(&c, "gemini", "some-unknown-model",
	    "0.05", err, sizeof(err)), 0);
	CU_ASSERT_STRING_EQUAL(prov_model(&c), "some-unknown-model");
	CU_ASSERT_DOUBLE_EQUAL(prov_job_estimate(&c, 1024, 1024), 0.05, PRICE_EPS);
	cfg_free(&c);
	/* a bad override is refused by name, not taken for unset */
	CU_ASSERT_EQUAL(price_cfg(&c, "gemini", "some-unknown-model", "none",
	    err, sizeof(err)), -1);
	CU_ASSERT(strncmp(err, "IMAGEGEN_PRICE_PER_IMAGE_USD: ", 30) == 0);
	CU_ASSERT_EQUAL(price_cfg(&c, "local", NULL, "-0.01", err,
	    sizeof(err)), -1);
	CU_ASSERT(strncmp(err, "IMAGEGEN_PRICE_PER_IMAGE_USD: ", 30) == 0);
	CU_ASSERT_EQUAL(price_cfg(&c, "local", NULL, "0.0000001", err,
	    sizeof(err)), -1);
	CU_ASSERT(strncmp(err, "IMAGEGEN_PRICE_PER_IMAGE_USD: ", 30) == 0);
}

/* Known models start without the override and take the table's price. */
static void
test_price_known_model_starts(void)
{
	static const struct {
		const char *prov, *model;
		int w, h;
		double usd;
	} v[] = {
		{ "gemini", NULL, 1024, 1024, 0.039 },	/* the default: Flash */
		{ "gemini", "gemini-2.5-flash-image", 4096, 4096, 0.039 },
		{ "gemini", "gemini-3-pro-image-preview", 1024, 1024, 0.134 },
		{ "gemini", "gemini-3-pro-image-preview", 2048, 2048, 0.134 },
		{ "gemini", "gemini-3-pro-image-preview", 4096, 4096, 0.24 },
		{ "gemini", "gemini-3-pro-image", 4096, 2304, 0.24 },
		/* Google's listing name: the model itself */
		{ "gemini", "models/gemini-3-pro-image-preview", 4096, 4096, 0.24 },
		/* openai's default is Gemini's name, passed through a gateway */
		{ "openai", NULL, 1024, 1024, 0.039 },
		{ "openai", "gpt-image-1", 1024, 1024, 0.042 },
		{ "local", NULL, 1024, 1024, 0.0 },
		{ "local", "anything-at-all", 4096, 4096, 0.0 },
	};
	char err[512];
	struct cfg c;
	size_t i;

	for (i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		if (price_cfg(&c, v[i].prov, v[i].model, NULL, err,
		    sizeof(err)) != 0) {
			fprintf(stderr, "%s %s refused: %s\n", v[i].prov,
			    v[i].model != NULL ? v[i].model : "(default)", err);
			CU_FAIL("a priced model was refused");
			continue;
		}
		CU_ASSERT(prov_fixed_price(&c) < 0);
		CU_ASSERT_DOUBLE_EQUAL(prov_job_estimate(&c, v[i].w, v[i].h),
		    v[i].usd, PRICE_EPS);
		cfg_free(&c);
	}
	/* jobs record the name the table priced, not Google's listing name */
	CU_ASSERT_EQUAL_FATAL(price_cfg(&c, "gemini", "models/gemini-2.5-flash-image",
	    NULL, err, sizeof(err)), 0);
	CU_ASSERT_STRING_EQUAL(prov_model(&c), "gemini-2.5-flash-image");
	cfg_free(&c);
}

/* IMAGEGEN_PRICE_PER_IMAGE_USD is every image's price: the estimate of a
 * known model too, and the actual cost of what the provider made (here the
 * local provider, which the table prices at 0). */
static void
test_price_override_estimate_and_actual(void)
{
	struct provider p;
	struct prov_result r;
	char err[512];
	struct cfg c;

	CU_ASSERT_EQUAL_FATAL(price_cfg(&c, "gemini", "gemini-3-pro-image-preview",
	    "0.5", err, sizeof(err)), 0);
	CU_ASSERT_DOUBLE_EQUAL(prov_fixed_price(&c), 0.5, PRICE_EPS);
	CU_ASSERT_DOUBLE_EQUAL(prov_job_estimate(&c, 1024, 1024), 0.5, PRICE_EPS);
	CU_ASSERT_DOUBLE_EQUAL(prov_job_estimate(&c, 4096, 4096), 0.5, PRICE_EPS);
	cfg_free(&c);

	CU_ASSERT_EQUAL_FATAL(price_cfg(&c, "local", NULL, "0.123456", err,
	    sizeof(err)), 0);
	CU_ASSERT_DOUBLE_EQUAL(prov_job_estimate(&c, 64, 64), 0.123456, PRICE_EPS);
	CU_ASSERT_EQUAL_FATAL(prov_open(&p, &c, err, sizeof(err)), 0);
	if (gen_local(&p, "a priced fox", 64, 64, 0, &r) == PROV_OK) {
		CU_ASSERT_DOUBLE_EQUAL(r.cost_usd, 0.123456, PRICE_EPS);
	} else {
		CU_FAIL("local provider failed");
	}
	prov_result_free(&r);
	/* a failure costs nothing, fixed price or not */
	CU_ASSERT_NOT_EQUAL(gen_local(&p, "x", 63, 64, 0, &r), PROV_OK);
	CU_ASSERT(r.cost_usd < 0);
	prov_close(&p);
	cfg_free(&c);

	/* "0" is a price (free), not unset */
	CU_ASSERT_EQUAL_FATAL(price_cfg(&c, "gemini", "some-unknown-model", "0",
	    err, sizeof(err)), 0);
	CU_ASSERT_DOUBLE_EQUAL(prov_job_estimate(&c, 1024, 1024), 0.0, PRICE_EPS);
	cfg_free(&c);
}

/* ---- the provider table ----------------------------------------------- */

static void
test_provider_open_table(void)
{
	static const struct { const char *name, *err; } bad[] = {
		/* the remote providers need a key: the error names it */
		{ "gemini", "NANO_BANANA_API_KEY is not set (needed by "
		    "IMAGEGEN_PROVIDER=gemini)" },
		{ "openai", "NANO_BANANA_API_KEY is not set (needed by "
		    "IMAGEGEN_PROVIDER=openai)" },
		{ "nonesuch", "IMAGEGEN_PROVIDER: provider 'nonesuch' is not "
		    "available in this build" },
	};
	struct provider p;
	struct cfg c;
	char err[256];
	size_t i;

	memset(&c, 0, sizeof(c));
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		c.provider = (char *)bad[i].name;
		err[0] = '\0';
		CU_ASSERT_EQUAL(prov_open(&p, &c, err, sizeof(err)), -1);
		CU_ASSERT_STRING_EQUAL(err, bad[i].err);
		CU_ASSERT_PTR_NULL(p.ops);
		prov_close(&p);
	}
	if (open_local(&p, 0) != 0)
		return;
	CU_ASSERT_PTR_EQUAL(p.ops, &prov_local);
	CU_ASSERT_STRING_EQUAL(p.ops->name, "local");
	CU_ASSERT_STRING_EQUAL(p.model, "local-renderer-1");
	prov_close(&p);
	CU_ASSERT_PTR_NULL(p.ops);
	prov_close(&p);	/* twice is harmless */
	prov_close(NULL);
}

/* A fake provider whose reply the test chooses: checks that
 * prov_generate() verifies what any provider returns. */
static const unsigned char *fake_bytes;
static size_t fake_len;
static enum prov_err fake_rc;
static const char *fake_msg;

static enum prov_err
fake_generate(struct provider *p, const struct prov_request *req,
    struct prov_result *res)
{
	(void)p;
	(void)req;
	if (fake_bytes != NULL) {
		res->data = malloc(fake_len);
		if (res->data == NULL)
			return PROV_PROVIDER_ERROR;
		memcpy(res->data, fake_bytes, fake_len);
		res->len = fake_len;
	}
	/* The provider's claims, which must not survive. */
	snprintf(res->mime, sizeof(res->mime), "image/gif");
	res->width = 1;
	res->height = 1;
	if (fake_msg != NULL)
		snprintf(res->message, sizeof(res->message), "%s", fake_msg);
	return fake_rc;
}

static const struct prov_ops fake_ops = {
	.name = "fake", .generate = fake_generate,
};

/* A minimal baseline JPEG head: SOI, APP0 JFIF, a fill byte, SOF0 of
 * 300x200 with three components, then SOS and EOI. */
static const unsigned char jpeg_sample[] = {
	0xff, 0xd8,
	0xff, 0xe0, 0x00, 0x10, 'J', 'F', 'I', 'F', 0x00, 0x01, 0x01, 0x00,
	0x00, 0x01, 0x00, 0x01, 0x00, 0x00,
	0xff, 0xff, 0xc0, 0x00, 0x11, 0x08, 0x00, 0xc8, 0x01, 0x2c, 0x03,
	0x01, 0x22, 0x00, 0x02, 0x11, 0x01, 0x03, 0x11, 0x01,
	0xff, 0xda, 0x00, 0x08, 0x01, 0x01, 0x00, 0x00, 0x3f, 0x00,
	0xff, 0xd9,
};
#define JPEG_SOF_END 40		/* bytes up to the end of the SOF0 segment */

static void
test_provider_generate_checks_reply(void)
{
	static const unsigned char garbage[] = "<html>quota exceeded</html>";
	struct provider p = { &fake_ops, "fake-1", NULL, 0, 0 };
	struct prov_request rq;
	struct prov_result r;
	enum prov_err e;

	memset(&rq, 0, sizeof(rq));
	rq.prompt = "x";
	rq.width = rq.height = 1024;

	fake_bytes = garbage;
	fake_len = sizeof(garbage) - 1;
	fake_rc = PROV_OK;
	fake_msg = NULL;
	e = prov_generate(&p, &rq, &r);
	CU_ASSERT_EQUAL(e, PROV_PROVIDER_ERROR);
	CU_ASSERT_STRING_EQUAL(r.message, "reply is not a PNG, JPEG or WebP image");
	CU_ASSERT_PTR_NULL(r.data);
	CU_ASSERT_EQUAL(r.len, 0);
	prov_result_free(&r);

	fake_bytes = NULL;
	e = prov_generate(&p, &rq, &r);
	CU_ASSERT_EQUAL(e, PROV_NO_IMAGE);
	CU_ASSERT_PTR_NULL(r.data);
	prov_result_free(&r);

	/* the real type and size win over the provider's word */
	fake_bytes = jpeg_sample;
	fake_len = sizeof(jpeg_sample);
	e = prov_generate(&p, &rq, &r);
	CU_ASSERT_EQUAL(e, PROV_OK);
	CU_ASSERT_STRING_EQUAL(r.mime, "image/jpeg");
	CU_ASSERT_EQUAL(r.width, 300);
	CU_ASSERT_EQUAL(r.height, 200);
	CU_ASSERT(r.cost_usd < 0);	/* unknown unless reported */
	CU_ASSERT_EQUAL(r.input_tokens, -1);
	CU_ASSERT_EQUAL(r.output_tokens, -1);
	prov_result_free(&r);
	CU_ASSERT_PTR_NULL(r.data);

	/* a failure drops any bytes and keeps or supplies the message */
	fake_rc = PROV_RATE_LIMIT;
	fake_msg = NULL;
	e = prov_generate(&p, &rq, &r);
	CU_ASSERT_EQUAL(e, PROV_RATE_LIMIT);
	CU_ASSERT_PTR_NULL(r.data);
	CU_ASSERT_STRING_EQUAL(r.message, "RATE_LIMIT");
	prov_result_free(&r);
	fake_msg = "quota exceeded for project";
	e = prov_generate(&p, &rq, &r);
	CU_ASSERT_STRING_EQUAL(r.message, "quota exceeded for project");
	prov_result_free(&r);

	fake_rc = (enum prov_err)77;
	e = prov_generate(&p, &rq, &r);
	CU_ASSERT_EQUAL(e, PROV_PROVIDER_ERROR);
	prov_result_free(&r);
	fake_bytes = NULL;
	fake_msg = NULL;

	memset(&p, 0, sizeof(p));
	CU_ASSERT_EQUAL(prov_generate(&p, &rq, &r), PROV_PROVIDER_ERROR);
	prov_result_free(&r);
	memset(&r, 0, sizeof(r));
	prov_result_free(&r);	/* a zeroed result */
	prov_result_free(NULL);
}

/* ---- prov_image_sniff ------------------------------------------------------ */

static void
test_image_sniff_png_from_local(void)
{
	struct provider p;
	struct prov_result r;
	const char *mime;
	int w, h;

	if (open_local(&p, 0) != 0)
		return;
	CU_ASSERT_EQUAL_FATAL(gen_local(&p, "a lighthouse", 200, 100, 0, &r),
	    PROV_OK);
	CU_ASSERT_EQUAL(prov_image_sniff(r.data, r.len, &mime, &w, &h), 0);
	CU_ASSERT_STRING_EQUAL(mime, "image/png");
	CU_ASSERT_EQUAL(w, 200);
	CU_ASSERT_EQUAL(h, 100);
	/* signature and IHDR, CRC included: 33 bytes */
	check_prefixes(r.data, 48, 33, "image/png", 200, 100);
	check_mutations(r.data, 40);
	prov_result_free(&r);
	prov_close(&p);
}

static void
test_image_sniff_png_bad_headers(void)
{
	unsigned char d[33] = {
		0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n',
		0, 0, 0, 13, 'I', 'H', 'D', 'R',
		0, 0, 1, 0, 0, 0, 0, 128, 8, 2, 0, 0, 0,
		0, 0, 0, 0,
	};
	unsigned char b[33];
	const char *mime;
	int w, h;

	CU_ASSERT_EQUAL(prov_image_sniff(d, sizeof(d), &mime, &w, &h), 0);
	CU_ASSERT_EQUAL(w, 256);
	CU_ASSERT_EQUAL(h, 128);
	memcpy(b, d, sizeof(b));
	b[19] = 0;
	b[18] = 0;		/* width 0 */
	CU_ASSERT_EQUAL(prov_image_sniff(b, sizeof(b), &mime, &w, &h), -1);
	memcpy(b, d, sizeof(b));
	b[16] = 0x80;		/* width over 2^31 - 1 */
	CU_ASSERT_EQUAL(prov_image_sniff(b, sizeof(b), &mime, &w, &h), -1);
	memcpy(b, d, sizeof(b));
	b[24] = 4;		/* RGB at 4 bits */
	CU_ASSERT_EQUAL(prov_image_sniff(b, sizeof(b), &mime, &w, &h), -1);
	memcpy(b, d, sizeof(b));
	b[25] = 5;		/* no such colour type */
	CU_ASSERT_EQUAL(prov_image_sniff(b, sizeof(b), &mime, &w, &h), -1);
	memcpy(b, d, sizeof(b));
	b[28] = 2;		/* no such interlace */
	CU_ASSERT_EQUAL(prov_image_sniff(b, sizeof(b), &mime, &w, &h), -1);
	memcpy(b, d, sizeof(b));
	b[11] = 14;		/* IHDR of the wrong length */
	CU_ASSERT_EQUAL(prov_image_sniff(b, sizeof(b), &mime, &w, &h), -1);
	memcpy(b, d, sizeof(b));
	b[12] = 'i';		/* first chunk not IHDR */
	CU_ASSERT_EQUAL(prov_image_sniff(b, sizeof(b), &mime, &w, &h), -1);
}

static void
test_image_sniff_jpeg(void)
{
	unsigned char b[sizeof(jpeg_sample)];
	const char *mime;
	int w, h;

	check_prefixes(jpeg_sample, sizeof(jpeg_sample), JPEG_SOF_END,
	    "image/jpeg", 300, 200);
	check_mutations(jpeg_sample, sizeof(jpeg_sample));

	/* progressive (SOF2) is fine */
	memcpy(b, jpeg_sample, sizeof(b));
	b[22] = 0xc2;
	CU_ASSERT_EQUAL(prov_image_sniff(b, sizeof(b), &mime, &w, &h), 0);
	/* lossless (SOF3) and arithmetic (SOF9) are not for browsers */
	b[22] = 0xc3;
	CU_ASSERT_EQUAL(prov_image_sniff(b, sizeof(b), &mime, &w, &h), -1);
	b[22] = 0xc9;
	CU_ASSERT_EQUAL(prov_image_sniff(b, sizeof(b), &mime, &w, &h), -1);
	/* SOS before any frame header */
	b[22] = 0xda;
	CU_ASSERT_EQUAL(prov_image_sniff(b, sizeof(b), &mime, &w, &h), -1);
	/* height 0 (size only in a later DNL) */
	memcpy(b, jpeg_sample, sizeof(b));
	b[26] = 0;
	b[27] = 0;
	CU_ASSERT_EQUAL(prov_image_sniff(b, sizeof(b), &mime, &w, &h), -1);
	/* APP0 length 1, and one running past the end */
	memcpy(b, jpeg_sample, sizeof(b));
	b[5] = 1;
	CU_ASSERT_EQUAL(prov_image_sniff(b, sizeof(b), &mime, &w, &h), -1);
	b[4] = 0xff;
	b[5] = 0xff;
	CU_ASSERT_EQUAL(prov_image_sniff(b, sizeof(b), &mime, &w, &h), -1);
	/* a SOF0 whose length disagrees with its component count */
	memcpy(b, jpeg_sample, sizeof(b));
	b[30] = 4;
	CU_ASSERT_EQUAL(prov_image_sniff(b, sizeof(b), &mime, &w, &h), -1);
	/* junk between segments */
	memcpy(b, jpeg_sample, sizeof(b));
	b[20] = 0x00;
	CU_ASSERT_EQUAL(prov_image_sniff(b, sizeof(b), &mime, &w, &h), -1);
}

/* RIFF/WEBP around one chunk: the test's little WebP files. */
static size_t
webp_make(unsigned char *out, const char *fourcc, const unsigned char *pl,
    size_t n)
{
	size_t padded = n + (n & 1), riff = 4 + 8 + padded;

	memcpy(out, "RIFF", 4);
	out[4] = riff & 0xff;
	out[5] = (riff >> 8) & 0xff;
	out[6] = out[7] = 0;
	memcpy(out + 8, "WEBP", 4);
	memcpy(out + 12, fourcc, 4);
	out[16] = n & 0xff;
	out[17] = (n >> 8) & 0xff;
	out[18] = out[19] = 0;
	memcpy(out + 20, pl, n);
	if (n & 1)
		out[20 + n] = 0;
	return 8 + riff;
}

static void
test_image_sniff_webp(void)
{
	/* VP8L: 0x2f, then (w-1) | (h-1) << 14, alpha 0, version 0 */
	uint32_t bits = (640 - 1) | (uint32_t)(480 - 1) << 14;
	unsigned char vp8l[5] = {
		0x2f, bits & 0xff, (bits >> 8) & 0xff, (bits >> 16) & 0xff,
		(bits >> 24) & 0xff,
	};
	/* VP8: key frame tag, start code, 14-bit sizes 1024 x 768 */
	unsigned char vp8[10] = {
		0x50, 0x02, 0x00, 0x9d, 0x01, 0x2a, 0x00, 0x04, 0x00, 0x03,
	};
	/* VP8X: flags, reserved, canvas (w-1, h-1) = 4096 x 2304 */
	unsigned char vp8x[10] = {
		0x10, 0, 0, 0, 0xff, 0x0f, 0x00, 0xff, 0x08, 0x00,
	};
	unsigned char f[64], b[64];
	const char *mime;
	size_t n;
	int w, h;

	n = webp_make(f, "VP8L", vp8l, sizeof(vp8l));
	check_prefixes(f, n, n, "image/webp", 640, 480);
	check_mutations(f, n);
	memcpy(b, f, n);
	b[20] = 0x2e;		/* signature */
	CU_ASSERT_EQUAL(prov_image_sniff(b, n, &mime, &w, &h), -1);
	memcpy(b, f, n);
	b[24] |= 0x20;		/* version 1 */
	CU_ASSERT_EQUAL(prov_image_sniff(b, n, &mime, &w, &h), -1);

	n = webp_make(f, "VP8 ", vp8, sizeof(vp8));
	check_prefixes(f, n, n, "image/webp", 1024, 768);
	check_mutations(f, n);
	memcpy(b, f, n);
	b[20] |= 1;		/* an inter frame cannot start a file */
	CU_ASSERT_EQUAL(prov_image_sniff(b, n, &mime, &w, &h), -1);
	memcpy(b, f, n);
	b[24] = 0x02;		/* start code */
	CU_ASSERT_EQUAL(prov_image_sniff(b, n, &mime, &w, &h), -1);

	n = webp_make(f, "VP8X", vp8x, sizeof(vp8x));
	check_prefixes(f, n, n, "image/webp", 4096, 2304);
	check_mutations(f, n);
	memcpy(b, f, n);
	memset(b + 24, 0xff, 6);	/* 2^24 x 2^24 is over 2^32 pixels */
	CU_ASSERT_EQUAL(prov_image_sniff(b, n, &mime, &w, &h), -1);

	/* a chunk larger than the RIFF, a RIFF larger than the bytes */
	n = webp_make(f, "VP8X", vp8x, sizeof(vp8x));
	memcpy(b, f, n);
	b[16] = 12;
	CU_ASSERT_EQUAL(prov_image_sniff(b, n, &mime, &w, &h), -1);
	memcpy(b, f, n);
	b[7] = 0x80;
	CU_ASSERT_EQUAL(prov_image_sniff(b, n, &mime, &w, &h), -1);
	memcpy(b, f, n);
	memcpy(b + 12, "ALPH", 4);
	CU_ASSERT_EQUAL(prov_image_sniff(b, n, &mime, &w, &h), -1);
}

static void
test_image_sniff_garbage(void)
{
	unsigned char buf[300];
	uint32_t x = 12345;
	const char *mime;
	size_t len, i;
	int w, h, hits = 0;

	CU_ASSERT_EQUAL(prov_image_sniff(NULL, 10, &mime, &w, &h), -1);
	for (len = 0; len <= sizeof(buf); len++) {
		for (i = 0; i < len; i++) {
			x = x * 1103515245u + 12345u;
			buf[i] = (unsigned char)(x >> 16);
		}
		if (sniff_copy(buf, len, &mime, &w, &h) == 0)
			hits++;
	}
	CU_ASSERT_EQUAL(hits, 0);
	/* a run of 0xff after SOI: fill bytes up to the end */
	memset(buf, 0xff, sizeof(buf));
	buf[1] = 0xd8;
	CU_ASSERT_EQUAL(sniff_copy(buf, sizeof(buf), &mime, &w, &h), -1);
	/* RSTn markers forever */
	for (i = 2; i + 1 < sizeof(buf); i += 2) {
		buf[i] = 0xff;
		buf[i + 1] = 0xd0;
	}
	CU_ASSERT_EQUAL(sniff_copy(buf, sizeof(buf), &mime, &w, &h), -1);
}

/* ---- the local provider ----------------------------------------------- */

static void
test_local_sizes_exact(void)
{
	static const int sizes[][2] = {
		{ 64, 64 }, { 65, 97 }, { 640, 480 }, { 1024, 1024 },
		{ 1344, 768 }, { 64, 4096 }, { 4096, 64 },
	};
	struct provider p;
	struct prov_result r;
	const char *mime;
	size_t i;
	int w, h;

	if (open_local(&p, 0) != 0)
		return;
	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		if (gen_local(&p, "a fox in snow", sizes[i][0], sizes[i][1], 0,
		    &r) != PROV_OK) {
			CU_FAIL("local provider failed");
			prov_result_free(&r);
			continue;
		}
		CU_ASSERT_EQUAL(prov_image_sniff(r.data, r.len, &mime, &w, &h), 0);
		CU_ASSERT_EQUAL(w, sizes[i][0]);
		CU_ASSERT_EQUAL(h, sizes[i][1]);
		CU_ASSERT_EQUAL(r.width, sizes[i][0]);
		CU_ASSERT_EQUAL(r.height, sizes[i][1]);
		CU_ASSERT_STRING_EQUAL(r.mime, "image/png");
		CU_ASSERT_DOUBLE_EQUAL(r.cost_usd, 0.0, PRICE_EPS);
		CU_ASSERT_STRING_EQUAL(r.message, "");
		/* 8-bit RGB, no interlace, and a PNG that ends with IEND */
		CU_ASSERT_EQUAL(r.data[24], 8);
		CU_ASSERT_EQUAL(r.data[25], 2);
		CU_ASSERT_EQUAL(r.data[28], 0);
		CU_ASSERT(r.len > 45 &&
		    memcmp(r.data + r.len - 8, "IEND\xae\x42\x60\x82", 8) == 0);
		prov_result_free(&r);
	}
	CU_ASSERT_EQUAL(gen_local(&p, "x", 63, 64, 0, &r), PROV_INVALID_REQUEST);
	CU_ASSERT_PTR_NULL(r.data);
	CU_ASSERT_EQUAL(gen_local(&p, "x", 64, 4097, 0, &r),
	    PROV_INVALID_REQUEST);
	CU_ASSERT_EQUAL(gen_local(&p, NULL, 64, 64, 0, &r), PROV_INVALID_REQUEST);
	prov_close(&p);
}

static void
test_local_deterministic(void)
{
	struct provider p;
	struct prov_result a, b, c;

	if (open_local(&p, 0) != 0)
		return;
	CU_ASSERT_EQUAL_FATAL(gen_local(&p, "a castle at dusk", 320, 240, 0, &a),
	    PROV_OK);
	CU_ASSERT_EQUAL_FATAL(gen_local(&p, "a castle at dusk", 320, 240, 0, &b),
	    PROV_OK);
	CU_ASSERT_EQUAL_FATAL(gen_local(&p, "a castle at dawn", 320, 240, 0, &c),
	    PROV_OK);
	CU_ASSERT(a.len == b.len && memcmp(a.data, b.data, a.len) == 0);
	CU_ASSERT(a.len != c.len || memcmp(a.data, c.data, a.len) != 0);
	prov_result_free(&a);
	prov_result_free(&b);
	prov_result_free(&c);
	prov_close(&p);
}

/* Guards the "[[fail:CODE]]" hook end-to-end tests rely on (with
 * IMAGEGEN_TEST_FAULTS=1). */
static void
test_local_fail_hook(void)
{
	struct provider p;
	struct prov_result r;
	char prompt[128], want[128];
	int e;

	if (open_local_faults(&p, 0, 1) != 0)
		return;
	for (e = PROV_AUTH_ERROR; e < PROV_ERR_COUNT; e++) {
		snprintf(prompt, sizeof(prompt), "[[fail:%s]] a cat",
		    prov_err_code((enum prov_err)e));
		snprintf(want, sizeof(want), "local provider: forced %s",
		    prov_err_code((enum prov_err)e));
		CU_ASSERT_EQUAL(gen_local(&p, prompt, 64, 64, 0, &r), e);
		CU_ASSERT_STRING_EQUAL(r.message, want);
		CU_ASSERT_PTR_NULL(r.data);
		prov_result_free(&r);
	}
	CU_ASSERT_EQUAL(gen_local(&p, "[[fail:RATE_LIMIT]]", 64, 64, 0, &r),
	    PROV_RATE_LIMIT);
	CU_ASSERT_STRING_EQUAL(r.message, "local provider: forced RATE_LIMIT");
	CU_ASSERT(prov_err_retryable(PROV_RATE_LIMIT));
	/* a typo is refused, not rendered */
	CU_ASSERT_EQUAL(gen_local(&p, "[[fail:RATELIMIT]] x", 64, 64, 0, &r),
	    PROV_INVALID_REQUEST);
	CU_ASSERT_EQUAL(gen_local(&p, "[[fail:OK]] x", 64, 64, 0, &r),
	    PROV_INVALID_REQUEST);
	CU_ASSERT_EQUAL(gen_local(&p, "[[fail:RATE_LIMIT", 64, 64, 0, &r),
	    PROV_INVALID_REQUEST);
	/* only at the very start */
	CU_ASSERT_EQUAL(gen_local(&p, " [[fail:RATE_LIMIT]]", 64, 64, 0, &r),
	    PROV_OK);
	prov_result_free(&r);
	CU_ASSERT_EQUAL(gen_local(&p, "x [[fail:TIMEOUT]]", 64, 64, 0, &r),
	    PROV_OK);
	prov_result_free(&r);
	prov_close(&p);
}

/* Without IMAGEGEN_TEST_FAULTS no prompt can make the provider fail: a
 * "[[fail:CODE]]" prompt renders a picture like any other. */
static void
test_local_fail_hook_off_by_default(void)
{
	struct provider p;
	struct prov_result r;
	char prompt[128];
	int e;

	if (open_local(&p, 0) != 0)
		return;
	for (e = PROV_AUTH_ERROR; e < PROV_ERR_COUNT; e++) {
		snprintf(prompt, sizeof(prompt), "[[fail:%s]] a cat",
		    prov_err_code((enum prov_err)e));
		CU_ASSERT_EQUAL(gen_local(&p, prompt, 64, 64, 0, &r), PROV_OK);
		CU_ASSERT_PTR_NOT_NULL(r.data);
		CU_ASSERT(r.len > 8 && memcmp(r.data, "\x89PNG", 4) == 0);
		prov_result_free(&r);
	}
	CU_ASSERT_EQUAL(gen_local(&p, "[[fail:NOPE]] x", 64, 64, 0, &r), PROV_OK);
	prov_result_free(&r);
	prov_close(&p);
}

static void
test_local_delay_and_deadline(void)
{
	struct provider p;
	struct prov_result r;
	long long t0, dt;

	/* the delay would pass the deadline: wait for it, then TIMEOUT */
	if (open_local(&p, 2000) != 0)
		return;
	t0 = now_ms();
	CU_ASSERT_EQUAL(gen_local(&p, "slow", 64, 64, t0 + 100, &r),
	    PROV_TIMEOUT);
	dt = now_ms() - t0;
	CU_ASSERT(dt >= 95 && dt < 1500);
	CU_ASSERT_PTR_NULL(r.data);
	/* a deadline already gone: no wait at all */
	t0 = now_ms();
	CU_ASSERT_EQUAL(gen_local(&p, "slow", 64, 64, t0 - 1, &r), PROV_TIMEOUT);
	CU_ASSERT(now_ms() - t0 < 100);
	prov_close(&p);

	/* a delay within the deadline, and with none */
	if (open_local_faults(&p, 60, 1) != 0)
		return;
	t0 = now_ms();
	CU_ASSERT_EQUAL(gen_local(&p, "slow", 64, 64, t0 + 10000, &r), PROV_OK);
	CU_ASSERT(now_ms() - t0 >= 60);
	prov_result_free(&r);
	t0 = now_ms();
	CU_ASSERT_EQUAL(gen_local(&p, "slow", 64, 64, 0, &r), PROV_OK);
	CU_ASSERT(now_ms() - t0 >= 60);
	prov_result_free(&r);
	/* the delay applies to a forced failure too */
	t0 = now_ms();
	CU_ASSERT_EQUAL(gen_local(&p, "[[fail:TEMPORARY]]", 64, 64, 0, &r),
	    PROV_TEMPORARY);
	CU_ASSERT(now_ms() - t0 >= 60);
	prov_close(&p);
}

/* Not a pass/fail check (valgrind is slow): prints what 1024x1024 costs. */
static void
test_local_render_time(void)
{
	struct provider p;
	struct prov_result r;
	long long t0;

	if (open_local(&p, 0) != 0)
		return;
	t0 = now_ms();
	CU_ASSERT_EQUAL(gen_local(&p, "timing", 1024, 1024, 0, &r), PROV_OK);
	printf("\n    local 1024x1024: %lld ms, %zu bytes ", now_ms() - t0, r.len);
	prov_result_free(&r);
	prov_close(&p);
}

int
main(void)
{
	CU_TestInfo tests[] = {
		{ "prov_err_code_table", test_prov_err_code_table },
		{ "prov_err_retryable_set", test_prov_err_retryable_set },
		{ "cost_estimate_table", test_cost_estimate_table },
		{ "price_unknown_model_refused", test_price_unknown_model_refused },
		{ "price_known_model_starts", test_price_known_model_starts },
		{ "price_override_estimate_and_actual",
		    test_price_override_estimate_and_actual },
		{ "provider_open_table", test_provider_open_table },
		{ "provider_generate_checks_reply",
		    test_provider_generate_checks_reply },
		{ "image_sniff_png_from_local", test_image_sniff_png_from_local },
		{ "image_sniff_png_bad_headers", test_image_sniff_png_bad_headers },
		{ "image_sniff_jpeg", test_image_sniff_jpeg },
		{ "image_sniff_webp", test_image_sniff_webp },
		{ "image_sniff_garbage", test_image_sniff_garbage },
		{ "local_sizes_exact", test_local_sizes_exact },
		{ "local_deterministic", test_local_deterministic },
		{ "local_fail_hook", test_local_fail_hook },
		{ "local_fail_hook_off_by_default",
		    test_local_fail_hook_off_by_default },
		{ "local_delay_and_deadline", test_local_delay_and_deadline },
		{ "local_render_time", test_local_render_time },
		CU_TEST_INFO_NULL
	};

	return cu_run("provider", tests);
}

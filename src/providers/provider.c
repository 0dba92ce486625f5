/* provider.c - the provider table, the price table and image sniffing. */
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "provider.h"

/* A new provider is one file and one entry here (and its line in
 * Makefile.am): prov_open(), the configuration loader (its settings),
 * --help and the price lookup need no other change. */
extern const struct prov_ops prov_local;
extern const struct prov_ops prov_gemini;
extern const struct prov_ops prov_openai;
extern const struct prov_ops prov_replicate;

static const struct prov_ops *const providers[] = {
	&prov_local,
	&prov_gemini,
	&prov_openai,
	&prov_replicate,
	NULL
};

/* Indexed by enum prov_err: the wire codes of SPEC §6. */
static const char *const prov_err_codes[PROV_ERR_COUNT] = {
	[PROV_OK] = "OK",
	[PROV_AUTH_ERROR] = "AUTH_ERROR",
	[PROV_RATE_LIMIT] = "RATE_LIMIT",
	[PROV_TEMPORARY] = "TEMPORARY",
	[PROV_TIMEOUT] = "TIMEOUT",
	[PROV_INVALID_REQUEST] = "INVALID_REQUEST",
	[PROV_CONTENT_POLICY] = "CONTENT_POLICY",
	[PROV_NO_IMAGE] = "NO_IMAGE",
	[PROV_PROVIDER_ERROR] = "PROVIDER_ERROR",
};

/*
 * The model rows every provider shares, tried after the provider's own
 * prices (prov_ops.prices), first matching row wins.
 *
 * - Gemini 2.5 Flash Image: $0.039 an image (1290 output tokens at $30/M);
 *   input $0.30/M, text output $2.50/M.
 * - Gemini 3 Pro Image: $0.134 at 1K and 2K, $0.24 at 4K (1120 and 2000
 *   output tokens at $120/M); input $2/M, text and thinking $12/M.
 * - GPT Image 1 (medium quality): $0.042 at 1024x1024, $0.063 larger; text
 *   input $5/M, image input $10/M, image output $40/M.
 * - The named model rows match any provider, because an OpenAI-compatible
 *   gateway in front of Nano Banana passes Google's model names through and
 *   bills about what Google bills.
 * - Any other model has no price here: guessing one would let budgets
 *   pass jobs that cost more. cfg_load() refuses such a model at start
 *   (prov_price_check) unless IMAGEGEN_PRICE_PER_IMAGE_USD gives its
 *   price, as it must for a gateway whose markup we do not know.
 */
static const struct prov_price model_prices[] = {
	{ "gemini-2.5-flash-image", 0, 0.039, 0.30, 0.30, 2.50, 30 },
	{ "gemini-2.5-flash-image-preview", 0, 0.039, 0.30, 0.30, 2.50, 30 },
	{ "gemini-3-pro-image-preview", 2048, 0.134, 2, 2, 12, 120 },
	{ "gemini-3-pro-image-preview", 0, 0.24, 2, 2, 12, 120 },
	{ "gemini-3-pro-image", 2048, 0.134, 2, 2, 12, 120 },
	{ "gemini-3-pro-image", 0, 0.24, 2, 2, 12, 120 },
	{ "gpt-image-1", 1024, 0.042, 5, 10, 40, 40 },
	{ "gpt-image-1", 0, 0.063, 5, 10, 40, 40 },
};

const struct prov_ops *
prov_find(const char *name)
{
	size_t i;

	for (i = 0; name != NULL && providers[i] != NULL; i++)
		if (strcmp(providers[i]->name, name) == 0)
			return providers[i];
	return NULL;
}

size_t
prov_backends(struct settings_backend *out, size_t max)
{
	size_t i;

	for (i = 0; providers[i] != NULL; i++) {
		if (i >= max)
			continue;
		out[i].name = providers[i]->name;
		out[i].about = providers[i]->about;
		out[i].rows = providers[i]->settings;
		out[i].shared = providers[i]->shared_settings;
		out[i].conf_size = providers[i]->conf_size;
		out[i].default_if = providers[i]->default_if;
		out[i].check = providers[i]->check;
	}
	return i;
}

const char *
prov_model(const struct cfg *c)
{
	const struct prov_ops *ops = prov_find(c->provider);

	if (ops == NULL || ops->model == NULL || c->provider_conf == NULL)
		return NULL;
	return ops->model(c->provider_conf);
}

const char *
prov_err_code(enum prov_err e)
{
	if ((int)e < 0 || e >= PROV_ERR_COUNT)
		return prov_err_codes[PROV_PROVIDER_ERROR];
	return prov_err_codes[e];
}

int
prov_err_retryable(enum prov_err e)
{
	return e == PROV_RATE_LIMIT || e == PROV_TEMPORARY || e == PROV_TIMEOUT;
}

int
prov_open(struct provider *p, const struct cfg *c, char *err,
    size_t errlen)
{
	const struct prov_ops *ops = NULL;
	const char *name;
	int rc = -1;

	memset(p, 0, sizeof(*p));
	name = c->provider != NULL ? c->provider : "local";
	ops = prov_find(name);
	if (ops == NULL) {
		snprintf(err, errlen,
		    "IMAGEGEN_PROVIDER: provider '%.40s' is not available in this build",
		    name);
		goto out;
	}
	p->ops = ops;
	if (ops->open != NULL && ops->open(p, c, err, errlen) != 0) {
		/* The provider released what it made; leave p closed. */
		memset(p, 0, sizeof(*p));
		goto out;
	}
	/* A contract price replaces whatever the provider reports. */
	p->fixed_usd = prov_fixed_price(c);
	p->fixed = p->fixed_usd >= 0;
	log_info("provider %s, model %s", ops->name, p->model);
	rc = 0;
out:
	return rc;
}

void
prov_close(struct provider *p)
{
	if (p == NULL)
		return;
	if (p->ops != NULL && p->ops->close != NULL)
		p->ops->close(p);
	memset(p, 0, sizeof(*p));
}

/* Turns res into a failure with code e, dropping any image the provider
 * left in it. msg replaces the message unless NULL. Returns e. */
static enum prov_err
provider_fail(struct prov_result *res, enum prov_err e, const char *msg)
{
	free(res->data);
	res->data = NULL;
	res->len = 0;
	res->mime[0] = '\0';
	res->width = res->height = 0;
	if (msg != NULL)
		snprintf(res->message, sizeof(res->message), "%s", msg);
	return e;
}

/* What prov_generate() and prov_collect() check of any image. */
static enum prov_err
provider_checked(struct provider *p, enum prov_err e, struct prov_result *res)
{
	const char *mime;
	int w, h;

	/* Whatever the provider wrote, the message is a C string. */
	res->message[sizeof(res->message) - 1] = '\0';
	if (res->retry_after_ms < 0)
		res->retry_after_ms = 0;
	if ((int)e < 0 || e >= PROV_ERR_COUNT)
		return provider_fail(res, PROV_PROVIDER_ERROR,
		    "provider returned an unknown status");
	if (e != PROV_OK)
		return provider_fail(res, e,
		    res->message[0] == '\0' ? prov_err_code(e) : NULL);
	if (res->data == NULL || res->len == 0)
		return provider_fail(res, PROV_NO_IMAGE, "reply has no image");
	/* Never trust the provider's word for the type or the size: the
	 * bytes are stored and served as what we record here. */
	if (prov_image_sniff(res->data, res->len, &mime, &w, &h) != 0)
		return provider_fail(res, PROV_PROVIDER_ERROR,
		    "reply is not a PNG, JPEG or WebP image");
	snprintf(res->mime, sizeof(res->mime), "%s", mime);
	if (p->fixed)
		res->cost_usd = p->fixed_usd;
	res->width = w;
	res->height = h;
	res->message[0] = '\0';
	return PROV_OK;
}

static void
result_init(struct prov_result *res)
{
	memset(res, 0, sizeof(*res));
	res->cost_usd = -1;
	res->input_tokens = res->output_tokens = -1;
}

enum prov_err
prov_generate(struct provider *p, const struct prov_request *req,
    struct prov_result *res)
{
	result_init(res);
	if (p == NULL || p->ops == NULL || p->ops->generate == NULL)
		return provider_fail(res, PROV_PROVIDER_ERROR,
		    "provider is not open");
	return provider_checked(p, p->ops->generate(p, req, res), res);
}

int
prov_async(const struct provider *p)
{
	const struct prov_ops *o = p != NULL ? p->ops : NULL;

	return o != NULL && o->submit != NULL && o->peek != NULL &&
	    o->collect != NULL && o->cancel != NULL &&
	    o->webhook_secret != NULL && o->webhook_read != NULL;
}

enum prov_err
prov_submit(struct provider *p, const struct prov_request *req,
    const char *webhook, char *id, size_t idlen, struct prov_result *res)
{
	enum prov_err e;

	result_init(res);
	if (!prov_async(p))
		return provider_fail(res, PROV_PROVIDER_ERROR,
		    "provider does not call back");
	id[0] = '\0';
	e = p->ops->submit(p, req, webhook, id, idlen, res);
	res->message[sizeof(res->message) - 1] = '\0';
	if ((int)e < 0 || e >= PROV_ERR_COUNT)
		e = PROV_PROVIDER_ERROR;
	if (e == PROV_OK && id[0] == '\0')
		return provider_fail(res, PROV_PROVIDER_ERROR,
		    "provider gave no request id");
	if (e != PROV_OK)
		return provider_fail(res, e, res->message[0] == '\0' ?
		    prov_err_code(e) : NULL);
	return PROV_OK;
}

enum prov_err
prov_collect(struct provider *p, const struct prov_request *req,
    const char *outcome, struct prov_result *res)
{
	result_init(res);
	if (!prov_async(p))
		return provider_fail(res, PROV_PROVIDER_ERROR,
		    "provider does not call back");
	return provider_checked(p, p->ops->collect(p, req, outcome, res), res);
}

void
prov_result_free(struct prov_result *res)
{
	if (res == NULL)
		return;
	free(res->data);
	res->data = NULL;
	res->len = 0;
}

/* 1 when row applies to model at this longer side (side < 0: any). */
static int
price_match(const struct prov_price *row, const char *model, int side)
{
	if (row->model != NULL && (model == NULL || strcmp(row->model, model) != 0))
		return 0;
	return side < 0 || row->max_side == 0 || side <= row->max_side;
}

/* The first row for model at side: the provider's own, else the shared
 * model rows; NULL when none prices it. Can't fail. */
static const struct prov_price *
price_find(const char *provider, const char *model, int side)
{
	const struct prov_ops *ops = prov_find(provider);
	size_t i;

	for (i = 0; ops != NULL && i < ops->n_prices; i++)
		if (price_match(&ops->prices[i], model, side))
			return &ops->prices[i];
	for (i = 0; i < sizeof(model_prices) / sizeof(model_prices[0]); i++)
		if (price_match(&model_prices[i], model, side))
			return &model_prices[i];
	return NULL;
}

double
prov_cost_estimate(const char *provider, const char *model, int width,
    int height)
{
	const struct prov_price *p = price_find(provider, model,
	    width > height ? width : height);

	return p != NULL ? p->usd : -1;
}

double
prov_cost_from_usage(const char *provider, const char *model, long in_text,
    long in_image, long out_text, long out_image)
{
	/* Token rates do not depend on the size: the first row of the model. */
	const struct prov_price *p = price_find(provider, model, -1);

	if (p == NULL || p->in_text < 0 || p->in_image < 0 || p->out_text < 0 ||
	    p->out_image < 0)
		return -1;
	return ((in_text > 0 ? (double)in_text : 0) * p->in_text +
	    (in_image > 0 ? (double)in_image : 0) * p->in_image +
	    (out_text > 0 ? (double)out_text : 0) * p->out_text +
	    (out_image > 0 ? (double)out_image : 0) * p->out_image) / 1e6;
}

double
prov_fixed_price(const struct cfg *c)
{
	/* cfg_load() checked it: a plain decimal, at most 6 places. */
	if (c == NULL || c->price_per_image_usd == NULL)
		return -1;
	return strtod(c->price_per_image_usd, NULL);
}

double
prov_job_estimate(const struct cfg *c, int width, int height)
{
	double fixed = prov_fixed_price(c);

	if (fixed >= 0)
		return fixed;
	return prov_cost_estimate(c->provider, prov_model(c), width, height);
}

int
prov_price_check(const struct cfg *c, char *err, size_t errlen)
{
	const struct prov_ops *ops = prov_find(c->provider);
	const char *model = prov_model(c);

	/* An unknown provider is check_provider()'s to refuse. */
	if (ops == NULL || prov_fixed_price(c) >= 0)
		return 0;
	/* A row for the largest side is one for every side: rows cover
	 * sizes up to their max_side, and 0 is no limit. */
	if (price_find(c->provider, model, INT_MAX) != NULL)
		return 0;
	snprintf(err, errlen, "%s: no price for model '%.64s' of "
	    "IMAGEGEN_PROVIDER=%s; set IMAGEGEN_PRICE_PER_IMAGE_USD to what "
	    "one image costs", ops->model_var != NULL ? ops->model_var :
	    "model", model != NULL ? model : "", ops->name);
	return -1;
}

/* ---- prov_image_sniff ------------------------------------------------------- */

static uint32_t
rd_be16(const unsigned char *p)
{
	return (uint32_t)p[0] << 8 | p[1];
}

static uint32_t
rd_be32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	    (uint32_t)p[2] << 8 | p[3];
}

static uint32_t
rd_le16(const unsigned char *p)
{
	return (uint32_t)p[1] << 8 | p[0];
}

static uint32_t
rd_le24(const unsigned char *p)
{
	return (uint32_t)p[2] << 16 | (uint32_t)p[1] << 8 | p[0];
}

static uint32_t
rd_le32(const unsigned char *p)
{
	return (uint32_t)p[3] << 24 | (uint32_t)p[2] << 16 |
	    (uint32_t)p[1] << 8 | p[0];
}

/*
 * PNG: the signature, then IHDR as the first chunk (PNG §11.2.2), whole
 * with its CRC bytes present. The header fields must be a combination the
 * standard allows, so a random blob behind a PNG signature is refused.
 */
static int
sniff_png(const unsigned char *d, size_t len, int *w, int *h)
{
	static const unsigned char sig[8] = {
		0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'
	};
	uint32_t width, height;
	unsigned depth, ctype;

	if (len < 8 + 8 + 13 + 4 || memcmp(d, sig, 8) != 0)
		return -1;
	if (rd_be32(d + 8) != 13 || memcmp(d + 12, "IHDR", 4) != 0)
		return -1;
	width = rd_be32(d + 16);
	height = rd_be32(d + 20);
	depth = d[24];
	ctype = d[25];
	if (width == 0 || height == 0 || width > INT_MAX || height > INT_MAX)
		return -1;
	switch (ctype) {
	case 0:		/* greyscale */
		if (depth != 1 && depth != 2 && depth != 4 && depth != 8 &&
		    depth != 16)
			return -1;
		break;
	case 3:		/* palette */
		if (depth != 1 && depth != 2 && depth != 4 && depth != 8)
			return -1;
		break;
	case 2:		/* RGB */
	case 4:		/* grey + alpha */
	case 6:		/* RGBA */
		if (depth != 8 && depth != 16)
			return -1;
		break;
	default:
		return -1;
	}
	/* compression and filter method 0; interlace none or Adam7 */
	if (d[26] != 0 || d[27] != 0 || d[28] > 1)
		return -1;
	*w = (int)width;
	*h = (int)height;
	return 0;
}

/*
 * JPEG: SOI, then marker segments up to the first frame header. Only
 * baseline, extended and progressive Huffman frames (SOF0, SOF1, SOF2) are
 * accepted: the others (lossless, arithmetic, hierarchical) are not
 * images a browser shows. Every step moves forward and checks the length
 * against len before reading, so the walk ends within len bytes.
 */
static int
sniff_jpeg(const unsigned char *d, size_t len, int *w, int *h)
{
	size_t i = 2, seg;
	unsigned m, nf;
	uint32_t height, width;

	if (len < 4 || d[0] != 0xff || d[1] != 0xd8)
		return -1;
	for (;;) {
		/* A marker: 0xff, optional 0xff fill bytes, a code. */
		if (i >= len || d[i] != 0xff)
			return -1;
		while (i < len && d[i] == 0xff)
			i++;
		if (i >= len)
			return -1;
		m = d[i++];
		if (m == 0x00)
			return -1;		/* stuffed byte outside scan data */
		if (m == 0x01 || (m >= 0xd0 && m <= 0xd7))
			continue;		/* TEM, RSTn: no length */
		if (m == 0xd8 || m == 0xd9 || m == 0xda)
			return -1;		/* SOI, EOI or SOS before a frame */
		if (len - i < 2)
			return -1;
		seg = rd_be16(d + i);
		if (seg < 2 || seg > len - i)
			return -1;
		if (m >= 0xc0 && m <= 0xcf && m != 0xc4 && m != 0xc8 &&
		    m != 0xcc) {
			if (m > 0xc2)
				return -1;
			/* Lf P Y X Nf, then Nf 3-byte component specs */
			if (seg < 8)
				return -1;
			height = rd_be16(d + i + 3);
			width = rd_be16(d + i + 5);
			nf = d[i + 7];
			if (nf == 0 || seg != 8 + 3 * (size_t)nf)
				return -1;
			/* Height 0 means "given later by DNL": no size here. */
			if (width == 0 || height == 0)
				return -1;
			*w = (int)width;
			*h = (int)height;
			return 0;
		}
		i += seg;
	}
}

/*
 * WebP: a RIFF container no longer than the bytes we have, "WEBP", then
 * the first chunk: VP8 (lossy key frame), VP8L (lossless) or VP8X
 * (extended, canvas size), whole inside the RIFF payload.
 */
static int
sniff_webp(const unsigned char *d, size_t len, int *w, int *h)
{
	const unsigned char *c;
	uint32_t riff, csz, width, height, bits;

	if (len < 20 || memcmp(d, "RIFF", 4) != 0 ||
	    memcmp(d + 8, "WEBP", 4) != 0)
		return -1;
	riff = rd_le32(d + 4);
	/* riff counts from "WEBP"; compare without overflowing size_t. */
	if (riff < 12 || riff > len - 8)
		return -1;
	csz = rd_le32(d + 16);
	if (csz > riff - 12)
		return -1;
	c = d + 20;
	if (memcmp(d + 12, "VP8 ", 4) == 0) {
		/* frame tag (3), start code 9d 01 2a, 14-bit sizes + scale */
		if (csz < 10 || (c[0] & 1) != 0 || c[3] != 0x9d ||
		    c[4] != 0x01 || c[5] != 0x2a)
			return -1;
		width = rd_le16(c + 6) & 0x3fff;
		height = rd_le16(c + 8) & 0x3fff;
	} else if (memcmp(d + 12, "VP8L", 4) == 0) {
		/* 0x2f, then 14 bits width-1, 14 bits height-1, alpha, version */
		if (csz < 5 || c[0] != 0x2f)
			return -1;
		bits = rd_le32(c + 1);
		if ((bits >> 29) != 0)
			return -1;
		width = (bits & 0x3fff) + 1;
		height = ((bits >> 14) & 0x3fff) + 1;
	} else if (memcmp(d + 12, "VP8X", 4) == 0) {
		/* flags, 3 reserved, 24 bits width-1, 24 bits height-1 */
		if (csz < 10)
			return -1;
		width = rd_le24(c + 4) + 1;
		height = rd_le24(c + 7) + 1;
		/* The container limit: width * height fits 32 bits. */
		if ((uint64_t)width * height > UINT32_MAX)
			return -1;
	} else {
		return -1;
	}
	if (width == 0 || height == 0)
		return -1;
	*w = (int)width;
	*h = (int)height;
	return 0;
}

int
prov_image_sniff(const unsigned char *data, size_t len, const char **mime,
    int *w, int *h)
{
	int width = 0, height = 0;

	if (data == NULL)
		return -1;
	if (sniff_png(data, len, &width, &height) == 0)
		*mime = "image/png";
	else if (sniff_jpeg(data, len, &width, &height) == 0)
		*mime = "image/jpeg";
	else if (sniff_webp(data, len, &width, &height) == 0)
		*mime = "image/webp";
	else
		return -1;
	*w = width;
	*h = height;
	return 0;
}

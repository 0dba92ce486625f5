/* arena.h - per-request bump allocator. */
#ifndef IG_ARENA_H
#define IG_ARENA_H

#include <stdarg.h>
#include <stddef.h>

struct arena;

/* New arena whose chunks are at least chunk bytes. NULL on OOM.
 * Caller frees with arena_free(). */
struct arena *arena_new(size_t chunk);
/* n bytes aligned to 16, valid until arena_reset()/arena_free().
 * NULL on OOM or overflow. */
void *arena_alloc(struct arena *a, size_t n);
/* Zeroed arena_alloc(). */
void *arena_calloc(struct arena *a, size_t n, size_t size);
/* Copies; NULL on OOM or when s is NULL. */
char *arena_strdup(struct arena *a, const char *s);
char *arena_strndup(struct arena *a, const char *s, size_t n);
/* Formatted string in the arena; NULL on OOM. */
char *arena_printf(struct arena *a, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
char *arena_vprintf(struct arena *a, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));
/* Releases everything but the first chunk, which is kept for reuse. */
void arena_reset(struct arena *a);
/* Accepts NULL. */
void arena_free(struct arena *a);
/* Bytes handed out since the last reset. */
size_t arena_used(const struct arena *a);

#endif

#ifndef IMAGEGEN_FSUTIL_H
#define IMAGEGEN_FSUTIL_H

#include <stddef.h>
#include <sys/types.h>

/* Makes dir and its missing parents as mkdir -p would (parents 0755, dir
 * itself mode); existing ones are left as they are. dir is written to and
 * restored. 0, or -1 with errno (the component that failed is unknown to
 * the caller: say dir). */
int fs_mkdirs(char *dir, mode_t mode);
/* write(2) until all of p is written, through EINTR. 0, or -1 with errno. */
int fs_write_all(int fd, const void *p, size_t len);

#endif

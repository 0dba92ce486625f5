/* cmdline.c - what both programs' mains share: long options. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cmdline.h"

int
cmdline_getopt(int argc, char **argv, const char *spec)
{
	struct option opts[CMDLINE_MAX_OPTS + 1];
	char names[CMDLINE_MAX_OPTS][CMDLINE_MAX_NAME + 1];
	const char *p = spec;
	size_t len;
	int n = 0;

	memset(opts, 0, sizeof(opts));
	for (;;) {
		p += strspn(p, " ");
		if (*p == '\0')
			break;
		len = strcspn(p, "=/ ");
		if (n == CMDLINE_MAX_OPTS || len == 0 || len > CMDLINE_MAX_NAME ||
		    (p[len] != '=' && p[len] != '/') || p[len + 1] == '\0' ||
		    p[len + 1] == ' ')
			return '?';
		memcpy(names[n], p, len);
		names[n][len] = '\0';
		opts[n].name = names[n];
		opts[n].has_arg = p[len] == '=' ? required_argument : no_argument;
		opts[n].val = (unsigned char)p[len + 1];
		n++;
		p += len + 2;
	}
	return getopt_long(argc, argv, "", opts, NULL);
}

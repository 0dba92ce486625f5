/* uuid.c - the text form of a UUID, as the database and Supabase write it. */
#include <ctype.h>

#include "uuid.h"

int
uuid_valid(const char *s)
{
	int i;

	/* A NUL fails the test of its position, so the loop stops there. */
	for (i = 0; i < 36; i++) {
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (s[i] != '-')
				return 0;
		} else if (!isxdigit((unsigned char)s[i])) {
			return 0;
		}
	}
	return s[36] == '\0';
}

/* uuid.h - the text form of a UUID, as the database and Supabase write it. */
#ifndef IG_UUID_H
#define IG_UUID_H

/*
 * 1 when s is exactly 36 characters of UUID text, 8-4-4-4-12 hex digits
 * of either case separated by '-' (no braces, no "urn:uuid:"); 0 for
 * anything else, a shorter or longer string included. s is NUL-terminated;
 * it is read no further than its NUL or its 37th byte. Can't fail.
 */
int uuid_valid(const char *s);

#endif

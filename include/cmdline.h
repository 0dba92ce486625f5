/* cmdline.h - what both programs' mains share: long options. */
#ifndef IG_CMDLINE_H
#define IG_CMDLINE_H

#define CMDLINE_MAX_OPTS 24
#define CMDLINE_MAX_NAME 31

/*
 * getopt_long() over long options only, all named in one string spec:
 * space-separated words NAME=C (takes a value, then in optarg) or NAME/C
 * (takes none), C being the character returned for it, e.g.
 * "dir=d status/s help/h". Unambiguous abbreviations are accepted, as by
 * getopt_long. Returns C; '?' for an unknown option or a missing value
 * (getopt_long has said which on stderr) and for a malformed spec (more
 * than CMDLINE_MAX_OPTS words, or a name longer than CMDLINE_MAX_NAME);
 * -1 after the last option, optind then indexing the first operand.
 */
int cmdline_getopt(int argc, char **argv, const char *spec);

#endif

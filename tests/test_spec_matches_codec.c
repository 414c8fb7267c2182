/*  test_spec_matches_codec.c — protocol/chorus-protocol.md and the codec
    describe the same messages: every codec type has an ABNF rule named for
    it whose elements are exactly the codec's fields, in order, and the
    grammar has no message rule the codec lacks. Trailing fields, which a
    message may leave out, are written [in brackets].
*/
#include "chorus_msg.h"
#include "tap.h"

#include <ctype.h>

//  Reads the ```abnf block of the spec; NULL if there is none
static char *
s_read_abnf (const char *path)
{
    FILE *file = fopen (path, "r");
    if (!file)
        return NULL;
    char *block = (char *) calloc (1, 1 << 20);
    size_t used = 0;
    char line [4096];
    bool inside = false, seen = false;
    while (fgets (line, sizeof (line), file)) {
        if (!inside && strncmp (line, "```abnf", 7) == 0 && !seen) {
            inside = seen = true;
            continue;
        }
        if (inside && strncmp (line, "```", 3) == 0)
            inside = false;
        else
        if (inside && used + strlen (line) < (1 << 20) - 1) {
            strcpy (block + used, line);
            used += strlen (line);
        }
    }
    fclose (file);
    if (!seen) {
        free (block);
        return NULL;
    }
    return block;
}

//  Finds the line "name = ..." in the block; returns its right-hand side
static char *
s_rule (const char *block, const char *name)
{
    size_t length = strlen (name);
    for (const char *line = block; line && *line; ) {
        const char *end = strchr (line, '\n');
        if (strncmp (line, name, length) == 0) {
            const char *rest = line + length;
            while (*rest == ' ' || *rest == '\t')
                rest++;
            if (*rest == '=' && rest [1] != '/') {
                rest++;
                size_t size = end? (size_t) (end - rest): strlen (rest);
                char *rhs = (char *) malloc (size + 1);
                memcpy (rhs, rest, size);
                rhs [size] = 0;
                char *comment = strchr (rhs, ';');
                if (comment)
                    *comment = 0;
                return rhs;
            }
        }
        line = end? end + 1: NULL;
    }
    return NULL;
}

int
main (void)
{
    const char *srcdir = getenv ("srcdir");
    char path [1024];
    snprintf (path, sizeof (path), "%s/protocol/chorus-protocol.md", srcdir? srcdir: ".");
    char *block = s_read_abnf (path);
    if (!block)
        bail_out ("protocol/chorus-protocol.md has no ```abnf block");

    for (int type = 1; type <= CHORUS_MSG_TYPES; type++) {
        //  The rule name is the message name in lower case
        char name [32];
        const char *upper = chorus_msg_type_name (type);
        size_t i = 0;
        for (; upper [i] && i < sizeof (name) - 1; i++)
            name [i] = (char) tolower ((unsigned char) upper [i]);
        name [i] = 0;
        char *rhs = s_rule (block, name);
        if (!ok (rhs != NULL, "spec has an ABNF rule for %s", upper)) {
            tap_skip (1, "no rule");
            continue;
        }
        //  Expected: signature version %dN id <fields with '_' as '-'>
        char expected [1024];
        int used = snprintf (expected, sizeof (expected), "signature version %%d%d id", type);
        const char *fields [16];
        int count = chorus_msg_type_fields (type, fields, 16);
        int tail = chorus_msg_type_tail (type);     //  the last, in [brackets]
        for (int f = 0; f < count; f++) {
            bool trailing = f >= count - tail;
            used += snprintf (expected + used, sizeof (expected) - used,
                              trailing? " [%s]": " %s", fields [f]);
        }
        for (char *c = expected; *c; c++)
            if (*c == '_')
                *c = '-';
        //  Normalise whitespace of the spec's rule
        char actual [1024];
        size_t out = 0;
        bool space = true;
        for (const char *c = rhs; *c && out < sizeof (actual) - 1; c++) {
            if (isspace ((unsigned char) *c)) {
                if (!space)
                    actual [out++] = ' ';
                space = true;
            }
            else {
                actual [out++] = *c;
                space = false;
            }
        }
        while (out > 0 && actual [out - 1] == ' ')
            out--;
        actual [out] = 0;
        is_str (actual, expected, "spec's %s rule lists the codec's fields in order", upper);
        free (rhs);
    }
    //  No message rule in the spec that the codec does not know
    int extra = 0;
    for (int type = CHORUS_MSG_TYPES + 1; type < 64; type++) {
        char pattern [32];
        snprintf (pattern, sizeof (pattern), "version %%d%d ", type);
        if (strstr (block, pattern))
            extra++;
    }
    is_int (extra, 0, "spec defines no message type the codec lacks");
    free (block);
    return done_testing ();
}

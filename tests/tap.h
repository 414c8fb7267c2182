/*  tap.h — a small Test Anything Protocol writer for Chorus's test programs.

    Each test program prints a plan, one "ok"/"not ok" line per assertion
    and diagnostics on "#" lines; automake's tap-driver reads them.
*/
#ifndef CHORUS_TAP_H_INCLUDED
#define CHORUS_TAP_H_INCLUDED

#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int tap_count = 0;   //  assertions made so far
static int tap_failed = 0;  //  assertions that failed

static inline void
tap_plan (int count)
{
    printf ("1..%d\n", count);
    fflush (stdout);
}

static inline void
diag (const char *format, ...)
{
    va_list args;
    va_start (args, format);
    printf ("# ");
    vprintf (format, args);
    printf ("\n");
    va_end (args);
    fflush (stdout);
}

static inline bool
tap_result (bool pass, const char *file, int line, const char *format, va_list args)
{
    tap_count++;
    if (!pass)
        tap_failed++;
    printf ("%s %d - ", pass? "ok": "not ok", tap_count);
    vprintf (format, args);
    printf ("\n");
    if (!pass)
        printf ("#   failed at %s:%d\n", file, line);
    fflush (stdout);
    return pass;
}

static inline bool
tap_ok (bool pass, const char *file, int line, const char *format, ...)
{
    va_list args;
    va_start (args, format);
    tap_result (pass, file, line, format, args);
    va_end (args);
    return pass;
}

static inline bool
tap_is_int (int64_t got, int64_t expected, const char *file, int line, const char *format, ...)
{
    va_list args;
    va_start (args, format);
    bool pass = tap_result (got == expected, file, line, format, args);
    va_end (args);
    if (!pass)
        printf ("#   got: %" PRId64 "\n#   expected: %" PRId64 "\n", got, expected);
    return pass;
}

static inline bool
tap_is_str (const char *got, const char *expected, const char *file, int line,
            const char *format, ...)
{
    bool same = (got == NULL && expected == NULL)
             || (got && expected && strcmp (got, expected) == 0);
    va_list args;
    va_start (args, format);
    bool pass = tap_result (same, file, line, format, args);
    va_end (args);
    if (!pass)
        printf ("#   got: '%s'\n#   expected: '%s'\n", got? got: "(null)",
                expected? expected: "(null)");
    return pass;
}

#define ok(test, ...) tap_ok ((test), __FILE__, __LINE__, __VA_ARGS__)
#define is_int(got, expected, ...) \
    tap_is_int ((int64_t) (got), (int64_t) (expected), __FILE__, __LINE__, __VA_ARGS__)
#define is_str(got, expected, ...) tap_is_str ((got), (expected), __FILE__, __LINE__, __VA_ARGS__)

//  Skips the next `count` assertions with a reason (e.g. no UDP broadcast here)
static inline void
tap_skip (int count, const char *reason)
{
    for (int i = 0; i < count; i++)
        printf ("ok %d # SKIP %s\n", ++tap_count, reason);
    fflush (stdout);
}

//  Prints the plan when it was not known in advance, and gives the exit code
static inline int
done_testing (void)
{
    printf ("1..%d\n", tap_count);
    fflush (stdout);
    return tap_failed? 1: 0;
}

//  Ends the test early with a failing plan (a prerequisite failed)
static inline void
bail_out (const char *reason)
{
    printf ("Bail out! %s\n", reason);
    fflush (stdout);
    exit (1);
}

#endif

/*  chorus_flowdef_path.c — the small languages inside a flow definition:
    paths into a flow's context ($.input..., $.steps.ID.output..., $.item...)
    with their lookup and the resolution of templates, durations, and the
    typing of YAML scalars.
*/
#include "chorus_flowdef.h"

#include <assert.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_SEGMENT_CHARS \
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-"
#define S_MAX_INDEX_DIGITS 18       //  array indexes beyond this lead nowhere
#define S_MAX_DURATION (365ull * 24 * 3600 * 1000)    //  a year, in ms

static int
s_refuse (char *error, size_t error_size, const char *format, ...)
{
    if (error && error_size) {
        va_list args;
        va_start (args, format);
        vsnprintf (error, error_size, format, args);
        va_end (args);
    }
    return -1;
}

static bool
s_segment_is (const char *segment, size_t size, const char *name)
{
    return strlen (name) == size && memcmp (segment, name, size) == 0;
}

int
chorus_flowdef_path_check (const char *path, char *error, size_t error_size)
{
    assert (path);
    const char *roots = "must start with $.input, $.steps.ID.output or $.item";
    if (strncmp (path, "$.", 2) != 0)
        return s_refuse (error, error_size, "bad path '%s': %s", path, roots);

    const char *segments [3] = { NULL, NULL, NULL };    //  the first three
    size_t sizes [3] = { 0, 0, 0 };                     //  and their sizes
    size_t count = 0;
    const char *segment = path + 2;
    while (true) {
        size_t size = strspn (segment, S_SEGMENT_CHARS);
        if (size == 0 || (segment [size] != '.' && segment [size] != 0))
            return s_refuse (error, error_size,
                             "bad path '%s': segments are A-Z a-z 0-9 _ - separated by single dots",
                             path);
        if (count < 3) {
            segments [count] = segment;
            sizes [count] = size;
        }
        count++;
        if (segment [size] == 0)
            break;
        segment += size + 1;
    }
    if (s_segment_is (segments [0], sizes [0], "input")
    ||  s_segment_is (segments [0], sizes [0], "item"))
        return 0;
    if (s_segment_is (segments [0], sizes [0], "steps") && count >= 3
    &&  s_segment_is (segments [2], sizes [2], "output"))
        return 0;
    return s_refuse (error, error_size, "bad path '%s': %s", path, roots);
}

//  A member of an object, by a key that is not NUL-terminated
static const json_t *
s_member (const json_t *object, const char *key, size_t size)
{
    char *copy = strndup (key, size);
    if (!copy)
        return NULL;
    const json_t *value = json_object_get (object, copy);
    free (copy);
    return value;
}

//  An element of an array, by a decimal index
static const json_t *
s_element (const json_t *array, const char *index, size_t size)
{
    if (size == 0 || size > S_MAX_INDEX_DIGITS || strspn (index, "0123456789") < size)
        return NULL;
    size_t value = 0;
    for (size_t i = 0; i < size; i++)
        value = value * 10 + (size_t) (index [i] - '0');
    return json_array_get (array, value);
}

const json_t *
chorus_flowdef_lookup (const json_t *context, const char *path)
{
    if (!context || !path || strncmp (path, "$.", 2) != 0)
        return NULL;
    const json_t *value = context;
    const char *segment = path + 2;
    while (value) {
        size_t size = strcspn (segment, ".");
        if (size == 0)
            return NULL;
        if (json_is_object (value))
            value = s_member (value, segment, size);
        else
        if (json_is_array (value))
            value = s_element (value, segment, size);
        else
            return NULL;
        if (segment [size] == 0)
            return value;
        segment += size + 1;
    }
    return NULL;
}

json_t *
chorus_flowdef_resolve (const json_t *template_, const json_t *context)
{
    if (!template_)
        return NULL;
    //  jansson's iterators take non-const values; nothing here writes to it
    json_t *source = (json_t *) template_;
    if (json_is_string (source)) {
        const char *text = json_string_value (source);
        if (strncmp (text, "$.", 2) == 0) {
            const json_t *value = chorus_flowdef_lookup (context, text);
            return value? json_deep_copy (value): json_null ();
        }
        return json_deep_copy (source);
    }
    if (json_is_object (source)) {
        json_t *result = json_object ();
        const char *key;
        json_t *child;
        json_object_foreach (source, key, child) {
            if (!result || json_object_set_new (result, key,
                                                chorus_flowdef_resolve (child, context))) {
                json_decref (result);
                return NULL;
            }
        }
        return result;
    }
    if (json_is_array (source)) {
        json_t *result = json_array ();
        size_t index;
        json_t *child;
        json_array_foreach (source, index, child) {
            if (!result || json_array_append_new (result,
                                                  chorus_flowdef_resolve (child, context))) {
                json_decref (result);
                return NULL;
            }
        }
        return result;
    }
    return json_deep_copy (source);
}

//  --------------------------------------------------------------------------
//  Durations

int
chorus_flowdef_duration (const char *text, uint64_t *ms, char *error, size_t error_size)
{
    assert (text);
    assert (ms);
    size_t digits = strspn (text, "0123456789");
    const char *unit = text + digits;
    if (digits > 0 && *unit == 0)
        return s_refuse (error, error_size, "bad duration '%s': needs a unit (ms, s, m, h)", text);
    uint64_t scale = strcmp (unit, "ms") == 0? 1
                   : strcmp (unit, "s") == 0? 1000
                   : strcmp (unit, "m") == 0? 60 * 1000
                   : strcmp (unit, "h") == 0? 3600 * 1000: 0;
    if (digits == 0 || scale == 0)
        return s_refuse (error, error_size,
                         "bad duration '%s': use an integer and a unit (ms, s, m, h), e.g. 250ms",
                         text);
    uint64_t value = 0;
    for (size_t i = 0; i < digits && value <= S_MAX_DURATION; i++)
        value = value * 10 + (uint64_t) (text [i] - '0');
    if (value > S_MAX_DURATION / scale)
        return s_refuse (error, error_size, "bad duration '%s': longer than 365 days", text);
    *ms = value * scale;
    return 0;
}

//  --------------------------------------------------------------------------
//  Scalars

static bool
s_is_one_of (const char *text, const char **words)
{
    for (int i = 0; words [i]; i++)
        if (strcmp (text, words [i]) == 0)
            return true;
    return false;
}

//  An integer in base 10 ([-+]digits), 8 (0o) or 16 (0x); false if out of range
static bool
s_integer (const char *text, long long *value)
{
    int base = 10;
    const char *digits = text;
    if (strncmp (text, "0o", 2) == 0 || strncmp (text, "0x", 2) == 0) {
        base = text [1] == 'o'? 8: 16;
        digits += 2;
    }
    else
    if (*digits == '-' || *digits == '+')
        digits++;
    const char *accept = base == 8? "01234567": base == 16? "0123456789abcdefABCDEF": "0123456789";
    if (*digits == 0 || digits [strspn (digits, accept)] != 0)
        return false;
    errno = 0;
    *value = strtoll (base == 10? text: digits, NULL, base);
    return errno == 0;
}

//  [-+]? (.digits | digits[.digits]) [e[-+]digits], finite
static bool
s_float (const char *text, double *value)
{
    const char *next = text;
    if (*next == '-' || *next == '+')
        next++;
    size_t whole = strspn (next, "0123456789");
    next += whole;
    size_t fraction = 0;
    if (*next == '.') {
        next++;
        fraction = strspn (next, "0123456789");
        next += fraction;
    }
    if (whole == 0 && fraction == 0)
        return false;
    if (*next == 'e' || *next == 'E') {
        next++;
        if (*next == '-' || *next == '+')
            next++;
        size_t exponent = strspn (next, "0123456789");
        if (exponent == 0)
            return false;
        next += exponent;
    }
    if (*next != 0)
        return false;
    *value = strtod (text, NULL);
    return isfinite (*value);
}

json_t *
chorus_flowdef_scalar (const char *text, size_t size, bool plain)
{
    assert (text);
    //  A NUL inside makes it text whatever it looks like
    if (plain && strlen (text) == size) {
        static const char *nulls [] = { "", "~", "null", "Null", "NULL", NULL };
        static const char *trues [] = { "true", "True", "TRUE", NULL };
        static const char *falses [] = { "false", "False", "FALSE", NULL };
        long long integer;
        double real;
        if (s_is_one_of (text, nulls))
            return json_null ();
        if (s_is_one_of (text, trues))
            return json_true ();
        if (s_is_one_of (text, falses))
            return json_false ();
        if (s_integer (text, &integer))
            return json_integer (integer);
        if (s_float (text, &real))
            return json_real (real);
    }
    return json_stringn (text, size);
}

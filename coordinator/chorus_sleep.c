/*  chorus_sleep.c — reads the time a sleep step wakes at: epoch
    milliseconds, or RFC 3339 (section 5.6, date-time) with its offset.
*/
#include "chorus_sleep.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_EXPECTED "use milliseconds since the epoch or an RFC 3339 time such as " \
                   "2026-01-31T09:00:00Z"

//  Reads `count` digits at *at into *value
static bool
s_digits (const char **at, int count, int *value)
{
    *value = 0;
    for (int i = 0; i < count; i++, (*at)++) {
        if (**at < '0' || **at > '9')
            return false;
        *value = *value * 10 + (**at - '0');
    }
    return true;
}

//  Days from 1970-01-01 to a date of the proleptic Gregorian calendar
//  (H. Hinnant's days_from_civil)
static int64_t
s_days (int year, int month, int day)
{
    year -= month <= 2;
    int64_t era = (year >= 0? year: year - 399) / 400;
    int64_t yoe = year - era * 400;
    int64_t doy = (153 * (month + (month > 2? -3: 9)) + 2) / 5 + day - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static bool
s_leap (int year)
{
    return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
}

//  RFC 3339 date-time: full-date "T" partial-time time-offset; "t", "z"
//  and a space for "T" are accepted as the RFC allows
static const char *
s_rfc3339 (const char *text, int64_t *ms)
{
    const char *at = text;
    int year, month, day, hour, minute, second, offset_h = 0, offset_m = 0;
    if (!s_digits (&at, 4, &year) || *at++ != '-' || !s_digits (&at, 2, &month)
    ||  *at++ != '-' || !s_digits (&at, 2, &day))
        return "the date is not YYYY-MM-DD";
    if (*at != 'T' && *at != 't' && *at != ' ')
        return "no 'T' between the date and the time";
    at++;
    if (!s_digits (&at, 2, &hour) || *at++ != ':' || !s_digits (&at, 2, &minute)
    ||  *at++ != ':' || !s_digits (&at, 2, &second))
        return "the time is not HH:MM:SS";
    static const int days_in [] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    if (month < 1 || month > 12 || day < 1
    ||  day > days_in [month - 1] + (month == 2 && s_leap (year)))
        return "no such date";
    //  A leap second (:60) is read as the next second
    if (hour > 23 || minute > 59 || second > 60)
        return "no such time";
    int millis = 0;
    if (*at == '.') {
        at++;
        int digits = 0;
        while (*at >= '0' && *at <= '9') {
            if (digits++ < 3)
                millis = millis * 10 + (*at - '0');
            at++;
        }
        if (digits == 0)
            return "no digits after the '.'";
        for (; digits < 3; digits++)
            millis *= 10;
    }
    int sign = 0;
    if (*at == 'Z' || *at == 'z')
        at++;
    else
    if (*at == '+' || *at == '-') {
        sign = *at++ == '+'? 1: -1;
        if (!s_digits (&at, 2, &offset_h) || *at++ != ':' || !s_digits (&at, 2, &offset_m)
        ||  offset_h > 23 || offset_m > 59)
            return "the offset is not +HH:MM or -HH:MM";
    }
    else
        return "no offset (Z, +HH:MM or -HH:MM)";
    if (*at)
        return "text after the time";
    int64_t seconds = s_days (year, month, day) * 86400 + hour * 3600 + minute * 60 + second
                    - sign * (offset_h * 3600 + offset_m * 60);
    *ms = seconds * 1000 + millis;
    return NULL;
}

int
chorus_sleep_time (const json_t *value, uint64_t *ms, char *error, size_t error_size)
{
    const char *why = NULL;
    int64_t time = 0;
    if (json_is_integer (value))
        time = json_integer_value (value);
    else
    if (json_is_string (value)) {
        if (strlen (json_string_value (value)) != json_string_length (value))
            why = "it holds a NUL character";
        else
            why = s_rfc3339 (json_string_value (value), &time);
    }
    else {
        if (error && error_size)
            snprintf (error, error_size, "%s is not a time: %s",
                      !value || json_is_null (value)? "null (no value)"
                      : json_is_real (value)? "a real number"
                      : json_is_boolean (value)? "a boolean"
                      : json_is_array (value)? "a list": "an object", S_EXPECTED);
        return -1;
    }
    if (!why && time < 0)
        why = "it is before 1970";
    if (why) {
        if (error && error_size) {
            char *text = json_dumps (value, JSON_ENCODE_ANY);
            snprintf (error, error_size, "%.200s is not a time: %s; %s", text? text: "?", why,
                      S_EXPECTED);
            free (text);
        }
        return -1;
    }
    *ms = (uint64_t) time;
    return 0;
}

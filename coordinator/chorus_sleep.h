/*  chorus_sleep.h — the time a `sleep: { until: PATH }` step wakes at, read
    from a value of the flow: milliseconds since the epoch, or an RFC 3339
    time (coordinator/FLOWS.md, "Sleeping"). Pure: no clock is read.
*/
#ifndef CHORUS_SLEEP_H_INCLUDED
#define CHORUS_SLEEP_H_INCLUDED

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

//  The value as milliseconds since the epoch (UTC): a non-negative integer
//  as it is, or a string such as "2026-11-30T17:00:00Z",
//  "2026-11-30T18:00:00.250+01:00". Returns 0, or -1 with "'VALUE' is not
//  a time: why" in error (value NULL: "no value")
int
    chorus_sleep_time (const json_t *value, uint64_t *ms, char *error, size_t error_size);

#endif

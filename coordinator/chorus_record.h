/*  chorus_record.h — the MessagePack of the coordinator's journal records:
    a writer that appends values to a growing buffer, and a reader that
    walks a record's bytes with every length checked against what is left,
    so that a damaged record is refused with the reason, never trusted.

    Only the types journal records use are read: nil, booleans, integers,
    str, bin and arrays (any value can be skipped; maps are written too, for
    the payloads the engine makes of values it holds as bytes). Values of the JSON data
    model (a flow's input, a task's output) go in as a bin that holds their
    payload encoding, so that they are made and read by the library's
    payload API alone (see chorus_value.h).
*/
#ifndef CHORUS_RECORD_H_INCLUDED
#define CHORUS_RECORD_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

//  A record being written; a plain struct, so that one can live on the
//  stack or in another struct and be reused without allocating again
typedef struct {
    uint8_t *data;              //  the bytes written
    size_t size;                //  how many
    size_t max;                 //  allocated
} chorus_record_t;

void
    chorus_record_init (chorus_record_t *self);
//  Frees the bytes; the record is empty and may be used again
void
    chorus_record_clear (chorus_record_t *self);
//  Empties the record, keeping its memory
void
    chorus_record_reset (chorus_record_t *self);

//  Each appends one value (or an array's header: its `count` values follow);
//  they abort when memory runs out, as the flow engine's actions do
void
    chorus_record_array (chorus_record_t *self, size_t count);
//  A map's header: `count` keys and values follow, key first
void
    chorus_record_map (chorus_record_t *self, size_t count);
void
    chorus_record_nil (chorus_record_t *self);
void
    chorus_record_bool (chorus_record_t *self, bool value);
void
    chorus_record_uint (chorus_record_t *self, uint64_t value);
void
    chorus_record_int (chorus_record_t *self, int64_t value);
//  A str; nil for NULL
void
    chorus_record_str (chorus_record_t *self, const char *string);
void
    chorus_record_bin (chorus_record_t *self, const void *data, size_t size);
//  Bytes that are already one encoded value (or several, as an array's)
void
    chorus_record_raw (chorus_record_t *self, const void *data, size_t size);

//  --------------------------------------------------------------------------
//  Reading: each call takes the next value. The first problem stops the
//  reader: `error` says what it was, and every later call returns a zero
//  value, so that a record is read straight through and checked once.

typedef struct {
    const uint8_t *at;          //  the next byte
    const uint8_t *end;         //  past the last
    const char *error;          //  the first problem, NULL while there is none
} chorus_reader_t;

void
    chorus_reader_init (chorus_reader_t *self, const void *data, size_t size);
//  An array's header: how many values follow (each at least one byte)
size_t
    chorus_reader_array (chorus_reader_t *self);
//  An array's header, which must announce `count` values; false otherwise
bool
    chorus_reader_tuple (chorus_reader_t *self, size_t count);
//  True, and the nil taken, if the next value is nil
bool
    chorus_reader_nil (chorus_reader_t *self);
bool
    chorus_reader_bool (chorus_reader_t *self);
//  True if the next value is a str (nothing is taken)
bool
    chorus_reader_is_str (chorus_reader_t *self);
//  An integer from 0 to max
uint64_t
    chorus_reader_uint (chorus_reader_t *self, uint64_t max);
//  An integer from min to max
int64_t
    chorus_reader_int (chorus_reader_t *self, int64_t min, int64_t max);
//  A str without NULs, as a new string; NULL for nil (when nil_ok), or on
//  a problem
char *
    chorus_reader_str (chorus_reader_t *self, bool nil_ok);
//  A bin: its bytes, in place, and their size; NULL for nil (when nil_ok),
//  or on a problem
const void *
    chorus_reader_bin (chorus_reader_t *self, size_t *size, bool nil_ok);
//  Passes over one value of any type, arrays and maps nested at most 32
//  deep (the value itself counting as one, as the payload API counts);
//  in *data and *size (when not NULL) the bytes it took
void
    chorus_reader_skip (chorus_reader_t *self, const void **data, size_t *size);
//  Records a problem found by the caller (a value out of its range), if
//  there is none yet; returns false
bool
    chorus_reader_fail (chorus_reader_t *self, const char *problem);
//  True when every byte was read and nothing was wrong; otherwise the
//  problem is in error ("trailing bytes" when some are left)
bool
    chorus_reader_done (chorus_reader_t *self);

#endif

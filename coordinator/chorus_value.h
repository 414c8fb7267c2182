/*  chorus_value.h — the coordinator's JSON values and payloads, converted
    one way everywhere: commands, replies and events through the library's
    payload API, and values in journal records as the payload encoding of
    the value, so that a value read back from the journal is the very value
    that was written, and the same as its payload decodes to.
*/
#ifndef CHORUS_VALUE_H_INCLUDED
#define CHORUS_VALUE_H_INCLUDED

#include "chorus_record.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

//  The payload of a JSON value (none for NULL) in *data, which the caller
//  frees, at most max_size bytes (0: the protocol's limit); 0, or -1 with
//  the reason in error. Reals go out with all their digits.
int
    chorus_value_pack (const json_t *value, size_t max_size, void **data, size_t *size,
                       char *error, size_t error_size);
//  The JSON value of a payload (new reference): null when there is none,
//  NULL when the bytes are not one MessagePack value
json_t *
    chorus_value_unpack (const void *data, size_t size);
//  Whether the bytes are one MessagePack value that chorus_value_unpack
//  decodes, told without decoding them
bool
    chorus_value_is_payload (const void *data, size_t size);

//  Writes a value into a record: nil for NULL; else a bin holding its
//  payload — `encoded` when the caller has it (the bytes the value was
//  decoded from), made now otherwise — or, for a value that no payload
//  holds (an object {"$bin": "not base64"}), a str holding its JSON text
void
    chorus_value_write (chorus_record_t *record, const json_t *value, const void *encoded,
                        size_t encoded_size);
//  Reads a value written so: 0 with *value a new reference (NULL for nil),
//  or -1 with the problem in the reader
int
    chorus_value_read (chorus_reader_t *reader, json_t **value);

#endif

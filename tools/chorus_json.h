/*  chorus_json.h — how the `chorus` command line reads and prints payloads:
    a thin layer over libchorus's payload API (chorus_payload_from_json and
    chorus_payload_to_json in chorus.h), which does the conversions.
*/
#ifndef CHORUS_JSON_H_INCLUDED
#define CHORUS_JSON_H_INCLUDED

#include "chorus.h"

#define CHORUS_JSON_PRETTY CHORUS_PAYLOAD_PRETTY
#define CHORUS_JSON_SORT CHORUS_PAYLOAD_SORT

//  chorus_payload_from_json with the tools' convention for failure: 0, or
//  -1 with the reason in error. max_size SIZE_MAX is no limit, 0 the
//  protocol's.
int
    chorus_json_to_msgpack (const char *json, size_t length, size_t max_size,
                            void **data, size_t *size, char *error, size_t error_size);

//  Text to print for a payload: its JSON when it holds one MessagePack
//  value, otherwise {"$bin": "<base64>"}; "null" for no payload (NULL).
//  Returns NULL only when out of memory.
char *
    chorus_json_payload_text (const void *data, size_t size, int flags);

#endif

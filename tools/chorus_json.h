/*  chorus_json.h — the bridge between the JSON that people type and read at
    the `chorus` command line and the MessagePack value that, by convention,
    a payload holds on the wire.
*/
#ifndef CHORUS_JSON_H_INCLUDED
#define CHORUS_JSON_H_INCLUDED

#include <stddef.h>

//  Deepest nesting of arrays and objects either way. msgpack-c's unpacker
//  keeps a fixed stack of 32 containers (MSGPACK_EMBED_STACK_SIZE) and fails
//  deeper values, so JSON is held to the same limit: whatever we encode we
//  can decode again.
#define CHORUS_JSON_MAX_DEPTH 32

//  Output flags: indented rather than compact text, and object keys sorted
//  rather than in the order the value holds them
#define CHORUS_JSON_PRETTY 1
#define CHORUS_JSON_SORT 2

//  Parse one JSON document of `length` bytes (any value, scalars included;
//  trailing text and duplicate keys are errors) and encode it as one
//  MessagePack value: objects become maps with str keys, reals float64,
//  and an object whose one member is "$bin" with a base64 string becomes a
//  bin of those bytes (the payload convention, protocol section 9.1).
//  Returns 0 with a malloc'ed *data of *size bytes that the caller frees,
//  or -1 with a message in error ("line 1 column 7: ...") when the text is
//  not JSON, nests deeper than CHORUS_JSON_MAX_DEPTH, or encodes to more
//  than max_size bytes (pass SIZE_MAX for no limit).
int
    chorus_json_to_msgpack (const char *json, size_t length, size_t max_size,
                            void **data, size_t *size, char *error, size_t error_size);

//  Render one MessagePack value, untrusted bytes, as JSON text that the
//  caller frees. Non-string map keys become their JSON text ("1"); bin is
//  {"$bin": "<base64>"}, ext {"$ext": type, "$bin": "<base64>"}; a uint64
//  above INT64_MAX becomes a real (JSON integers here are int64), a NaN or
//  infinite float becomes null, and invalid UTF-8 in a str becomes U+FFFD.
//  Returns NULL with a message in error when the bytes are not exactly one
//  well-formed value within CHORUS_JSON_MAX_DEPTH.
char *
    chorus_json_from_msgpack (const void *data, size_t size, int flags, char *error,
                              size_t error_size);

//  The same two conversions on values already parsed, for programs that
//  hold jansson values (the coordinator): no JSON text in between.
//  chorus_json_value_to_msgpack encodes a value as chorus_json_to_msgpack
//  encodes its text (0, or -1 with the reason in error).
//  chorus_json_value_from_msgpack checks untrusted bytes exactly as
//  chorus_json_from_msgpack does and returns the value (new reference),
//  or NULL with the reason in error.
struct json_t;
int
    chorus_json_value_to_msgpack (const struct json_t *value, size_t max_size, void **data,
                                  size_t *size, char *error, size_t error_size);
struct json_t *
    chorus_json_value_from_msgpack (const void *data, size_t size, char *error,
                                    size_t error_size);

//  Text to print for a payload: its JSON when it holds one MessagePack
//  value, otherwise {"$bin": "<base64>"}; "null" for no payload (NULL).
//  Returns NULL only when out of memory.
char *
    chorus_json_payload_text (const void *data, size_t size, int flags);

#endif

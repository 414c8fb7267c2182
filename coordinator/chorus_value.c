/*  chorus_value.c — JSON values and payloads for the coordinator (see the
    header): the library's payload API does the MessagePack, jansson the
    JSON text in between.
*/
#include "chorus_value.h"
#include "chorus.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_DUMP_FLAGS (JSON_ENCODE_ANY | JSON_COMPACT | JSON_REAL_PRECISION (17))
#define S_LOAD_FLAGS (JSON_DECODE_ANY | JSON_ALLOW_NUL)

int
chorus_value_pack (const json_t *value, size_t max_size, void **data, size_t *size,
                   char *error, size_t error_size)
{
    *data = NULL;
    *size = 0;
    if (!value)
        return 0;
    char *text = json_dumps (value, S_DUMP_FLAGS);
    if (!text) {
        snprintf (error, error_size, "out of memory");
        return -1;
    }
    int rc = chorus_payload_from_json (text, strlen (text), max_size, data, size, error,
                                       error_size);
    free (text);
    return rc? -1: 0;
}

json_t *
chorus_value_unpack (const void *data, size_t size)
{
    if (!data)
        return json_null ();
    char *text = NULL;
    json_t *value = NULL;
    if (chorus_payload_to_json (data, size, 0, &text, NULL, 0) == 0)
        value = json_loads (text, S_LOAD_FLAGS, NULL);
    chorus_payload_free (text);
    return value;
}

bool
chorus_value_is_payload (const void *data, size_t size)
{
    //  The payload API decodes what its scan accepts: one value, nested at
    //  most CHORUS_PAYLOAD_MAX_DEPTH deep, which is what the reader's skip
    //  accepts too
    chorus_reader_t reader;
    chorus_reader_init (&reader, data, size);
    chorus_reader_skip (&reader, NULL, NULL);
    return size > 0 && chorus_reader_done (&reader);
}

void
chorus_value_write (chorus_record_t *record, const json_t *value, const void *encoded,
                    size_t encoded_size)
{
    if (encoded) {
        chorus_record_bin (record, encoded, encoded_size);
        return;
    }
    if (!value) {
        chorus_record_nil (record);
        return;
    }
    void *data;
    size_t size;
    char error [128];
    if (chorus_value_pack (value, SIZE_MAX, &data, &size, error, sizeof (error)) == 0) {
        chorus_record_bin (record, data, size);
        chorus_payload_free (data);
        return;
    }
    char *text = json_dumps (value, S_DUMP_FLAGS);
    if (!text)
        abort ();
    chorus_record_str (record, text);
    free (text);
}

int
chorus_value_read (chorus_reader_t *reader, json_t **value)
{
    *value = NULL;
    if (chorus_reader_nil (reader))
        return 0;
    if (!chorus_reader_is_str (reader)) {
        size_t size;
        const void *data = chorus_reader_bin (reader, &size, false);
        if (!data)
            return -1;
        *value = chorus_value_unpack (data, size);
        if (!*value) {
            chorus_reader_fail (reader, "a value's payload does not decode");
            return -1;
        }
        return 0;
    }
    char *text = chorus_reader_str (reader, false);
    if (!text)
        return -1;
    *value = json_loads (text, S_LOAD_FLAGS, NULL);
    free (text);
    if (!*value) {
        chorus_reader_fail (reader, "a value's JSON text does not decode");
        return -1;
    }
    return 0;
}

/*  chorus_json.c — the tools' payload reading and printing, over the
    payload API of libchorus (see the header).
*/
#include "chorus_json.h"

#include <stdlib.h>
#include <string.h>

int
chorus_json_to_msgpack (const char *json, size_t length, size_t max_size,
                        void **data, size_t *size, char *error, size_t error_size)
{
    return chorus_payload_from_json (json, length, max_size, data, size, error, error_size)?
               -1: 0;
}

char *
chorus_json_payload_text (const void *data, size_t size, int flags)
{
    if (!data)
        return strdup ("null");
    char *text = NULL;
    chorus_payload_to_json (data, size, flags | CHORUS_PAYLOAD_RAW_AS_BIN, &text, NULL, 0);
    return text;
}

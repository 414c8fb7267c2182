/*  fuzz_chorus_msg.c — libFuzzer target for the wire decoder.

    Any input must decode or be refused as malformed without a crash, a read
    out of bounds or an unbounded allocation; whatever decodes must encode
    again, and that encoding must be a fixed point of decode + encode.
*/
#include "chorus_msg.h"

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    static chorus_msg_t *msg = NULL;
    if (!msg)
        msg = chorus_msg_new (CHORUS_MSG_PING);
    int rc = chorus_msg_decode (msg, data, size);
    if (rc != 0 && rc != CHORUS_MSG_MALFORMED)
        __builtin_trap ();
    if (rc == 0) {
        zframe_t *first = chorus_msg_encode (msg);
        if (!first)
            __builtin_trap ();      //  what we accept we must be able to say
        chorus_msg_t *copy = chorus_msg_new (CHORUS_MSG_PING);
        if (chorus_msg_decode (copy, zframe_data (first), zframe_size (first)) != 0)
            __builtin_trap ();
        zframe_t *second = chorus_msg_encode (copy);
        if (!second || !zframe_eq (first, second))
            __builtin_trap ();
        zframe_destroy (&second);
        zframe_destroy (&first);
        chorus_msg_destroy (&copy);
    }
    return 0;
}

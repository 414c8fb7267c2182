/*  chorus_be64.h — 64-bit numbers as 8 big-endian bytes, so that keys in
    LevelDB sort by number (the node's store, the coordinator's journal and
    trace). Private to the project; header-only, in common/, the floor every
    layer may stand on.
*/
#ifndef CHORUS_BE64_H_INCLUDED
#define CHORUS_BE64_H_INCLUDED

#include <stdint.h>

static inline void
chorus__put_be64 (void *at, uint64_t value)
{
    uint8_t *bytes = (uint8_t *) at;
    for (int i = 7; i >= 0; i--, value >>= 8)
        bytes [i] = (uint8_t) value;
}

static inline uint64_t
chorus__get_be64 (const void *at)
{
    const uint8_t *bytes = (const uint8_t *) at;
    uint64_t value = 0;
    for (int i = 0; i < 8; i++)
        value = (value << 8) | bytes [i];
    return value;
}

#endif

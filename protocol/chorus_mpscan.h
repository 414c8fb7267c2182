/*  chorus_mpscan.h — the structural scan that runs before msgpack-c is
    trusted with untrusted bytes, shared by the codec and the tools' JSON
    bridge. Private to the project; never installed.
*/
#ifndef CHORUS_MPSCAN_H_INCLUDED
#define CHORUS_MPSCAN_H_INCLUDED

#include <stddef.h>
#include <stdint.h>

//  Walks the framing of one MessagePack value at data: refuses truncation,
//  the reserved byte 0xc1, containers nested deeper than max_depth (the
//  outermost value is depth 1) and any array or map count larger than the
//  bytes left. Returns NULL, or what is wrong (too_deep for nesting); *end
//  is where the value ended, or where the scan stopped.
const char *
    chorus__mpscan (const void *data, size_t size, int max_depth, const char *too_deep,
                    size_t *end);

#endif

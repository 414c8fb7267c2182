/*  chorus_private.h — declarations shared by the library's own classes,
    never installed. Private symbols carry the chorus__ prefix.
*/
#ifndef CHORUS_PRIVATE_H_INCLUDED
#define CHORUS_PRIVATE_H_INCLUDED

#include "chorus.h"

//  Records the error of the last failed call in this thread; returns -1
//  so that callers can write `return chorus__fail (CHORUS_EINVAL);`.
int
    chorus__fail (int code);

#endif

/*  chorus_defset.h — the flow definitions a coordinator knows: those the
    flows directory holds now (deployed: new flows start on them), and every
    version a flow ever ran on (kept, since a running flow points to its
    definition). The directory is loaded whole or not at all, again on
    demand (SIGHUP) or when its files change.
*/
#ifndef CHORUS_DEFSET_H_INCLUDED
#define CHORUS_DEFSET_H_INCLUDED

#include "chorus_flowdef.h"

typedef struct _chorus_defset_t chorus_defset_t;

//  A set for the flows directory dir, empty until the first load
chorus_defset_t *
    chorus_defset_new (const char *dir);
void
    chorus_defset_destroy (chorus_defset_t **self_p);

//  Loads every *.yaml and *.yml of the directory, at time now (epoch ms):
//  all of them or nothing. Returns 0: the directory's definitions are the
//  deployed ones. Or -1 with the first problem in error ("file:line:column:
//  what", a name and version defined twice, a version changed under the same
//  number): nothing changed, and the error is kept for chorus_defset_json.
int
    chorus_defset_load (chorus_defset_t *self, uint64_t now, char *error, size_t error_size);

//  Whether the directory's files (names, sizes, times, inodes) changed
//  since the last load, and stayed the same since the call before, so that
//  a file being written is not loaded half way
bool
    chorus_defset_changed (chorus_defset_t *self);

//  The deployed definition of name with the highest version, NULL: none
chorus_flowdef_t *
    chorus_defset_newest (chorus_defset_t *self, const char *name);
//  The newest deployed definition of each name, in no order; borrowed,
//  valid until the next load
chorus_flowdef_t *
    chorus_defset_first (chorus_defset_t *self);
chorus_flowdef_t *
    chorus_defset_next (chorus_defset_t *self);

//  A version known to the set, deployed or not, NULL: unknown
chorus_flowdef_t *
    chorus_defset_version (chorus_defset_t *self, const char *name, int version);
//  Keeps a version read back from elsewhere (a journal), not deployed;
//  takes the definition (destroyed if that version is known) and returns
//  the one to use
chorus_flowdef_t *
    chorus_defset_keep (chorus_defset_t *self, chorus_flowdef_t *def);

//  What is deployed, for operators: {"directory", "loaded": epoch ms of the
//  last load, "definitions": [{"flow", "version", "file", "trigger",
//  "loaded", "newest"}], and if the last load failed "error": {"message",
//  "time"}}. A new reference.
json_t *
    chorus_defset_json (chorus_defset_t *self);

#endif

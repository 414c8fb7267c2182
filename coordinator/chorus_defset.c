/*  chorus_defset.c — the flow definitions a coordinator knows (see the
    header). A version, once known, is never freed nor replaced while the
    set lives: flows hold pointers to their definition, and a name and
    version must mean one text for the journal to replay a flow on it.
*/
#include "chorus_defset.h"

#include <czmq.h>
#include <dirent.h>
#include <errno.h>
#include <sys/stat.h>

//  A deployed definition: which file holds it, since when
typedef struct {
    chorus_flowdef_t *def;      //  borrowed from the known versions
    char *file;                 //  its file's name in the directory
    uint64_t loaded;            //  epoch ms it was first loaded from that file
} s_entry_t;

struct _chorus_defset_t {
    char *dir;                  //  the flows directory
    zhashx_t *known;            //  "name/version" -> chorus_flowdef_t, owned
    zlistx_t *deployed;         //  s_entry_t, by file name
    zhashx_t *newest;           //  name -> its deployed definition of highest version
    uint64_t loaded;            //  epoch ms of the last load, 0: none
    char *signature;            //  the directory's files as they were loaded
    char *seen;                 //  and as the last chorus_defset_changed saw them
    char *error;                //  why the last load failed, NULL: it did not
    uint64_t failed;            //  when it failed
};

static void
s_entry_destroy (void **item)
{
    s_entry_t *entry = (s_entry_t *) *item;
    if (entry) {
        free (entry->file);
        free (entry);
        *item = NULL;
    }
}

static void
s_def_destroy (void **item)
{
    chorus_flowdef_destroy ((chorus_flowdef_t **) item);
}

static int
s_entry_compare (const void *a, const void *b)
{
    return strcmp (((const s_entry_t *) a)->file, ((const s_entry_t *) b)->file);
}

chorus_defset_t *
chorus_defset_new (const char *dir)
{
    chorus_defset_t *self = (chorus_defset_t *) zmalloc (sizeof (chorus_defset_t));
    self->dir = strdup (dir);
    self->known = zhashx_new ();
    zhashx_set_destructor (self->known, s_def_destroy);
    self->deployed = zlistx_new ();
    zlistx_set_destructor (self->deployed, s_entry_destroy);
    zlistx_set_comparator (self->deployed, s_entry_compare);
    self->newest = zhashx_new ();
    return self;
}

void
chorus_defset_destroy (chorus_defset_t **self_p)
{
    chorus_defset_t *self = *self_p;
    if (!self)
        return;
    zhashx_destroy (&self->newest);
    zlistx_destroy (&self->deployed);
    zhashx_destroy (&self->known);
    free (self->dir);
    free (self->signature);
    free (self->seen);
    free (self->error);
    free (self);
    *self_p = NULL;
}

static bool
s_is_definition (const char *name)
{
    size_t length = strlen (name);
    return (length > 5 && streq (name + length - 5, ".yaml"))
        || (length > 4 && streq (name + length - 4, ".yml"));
}

//  The names of the directory's definition files, sorted; NULL if it
//  cannot be read
static zlistx_t *
s_names (const char *dir)
{
    DIR *handle = opendir (dir);
    if (!handle)
        return NULL;
    zlistx_t *names = zlistx_new ();
    zlistx_set_destructor (names, (zlistx_destructor_fn *) zstr_free);
    zlistx_set_comparator (names, (zlistx_comparator_fn *) strcmp);
    struct dirent *entry;
    while ((entry = readdir (handle)))
        if (s_is_definition (entry->d_name))
            zlistx_insert (names, strdup (entry->d_name), true);
    closedir (handle);
    return names;
}

//  What the directory's files are: one line per file with its name, size,
//  modification time (ns) and inode, which an edit, a copy or a rename
//  over it changes
static char *
s_signature (const char *dir)
{
    zlistx_t *names = s_names (dir);
    if (!names)
        return strdup ("(unreadable)");
    char *signature = strdup ("");
    for (char *name = (char *) zlistx_first (names); name;
         name = (char *) zlistx_next (names)) {
        char *path = zsys_sprintf ("%s/%s", dir, name);
        struct stat info;
        char *line = stat (path, &info) == 0
            ? zsys_sprintf ("%s %s %lld %lld.%09ld %llu\n", signature, name,
                            (long long) info.st_size, (long long) info.st_mtim.tv_sec,
                            info.st_mtim.tv_nsec, (unsigned long long) info.st_ino)
            : zsys_sprintf ("%s %s gone\n", signature, name);
        free (path);
        free (signature);
        signature = line;
    }
    zlistx_destroy (&names);
    return signature;
}

bool
chorus_defset_changed (chorus_defset_t *self)
{
    char *signature = s_signature (self->dir);
    bool changed = self->signature && !streq (signature, self->signature)
                && self->seen && streq (signature, self->seen);
    free (self->seen);
    self->seen = signature;
    return changed;
}

static char *
s_key (chorus_flowdef_t *def)
{
    return zsys_sprintf ("%s/%d", chorus_flowdef_name (def), chorus_flowdef_version (def));
}

//  The load failed: nothing changes, and why is kept
static int
s_failed (chorus_defset_t *self, uint64_t now, char *error)
{
    free (self->error);
    self->error = strdup (error);
    self->failed = now;
    return -1;
}

//  The newest definition of each name among entries, in a new table
static zhashx_t *
s_newest_of (zlistx_t *entries)
{
    zhashx_t *newest = zhashx_new ();
    for (s_entry_t *entry = (s_entry_t *) zlistx_first (entries); entry;
         entry = (s_entry_t *) zlistx_next (entries)) {
        const char *name = chorus_flowdef_name (entry->def);
        s_entry_t *other = (s_entry_t *) zhashx_lookup (newest, name);
        if (!other || chorus_flowdef_version (other->def) < chorus_flowdef_version (entry->def))
            zhashx_update (newest, name, entry);
    }
    return newest;
}

//  Depth-first over the flows a flow's steps run (`flow:`): path holds
//  the names from the first; 0, or -1 with a cycle in error at the step
//  that closes it
static int
s_visit_calls (chorus_defset_t *self, zhashx_t *newest, s_entry_t *entry, zhashx_t *color,
               char *path, size_t path_size, char *error, size_t error_size)
{
    const char *name = chorus_flowdef_name (entry->def);
    zhashx_update (color, name, (void *) "visiting");
    size_t length = strlen (path);
    snprintf (path + length, path_size - length, "%s%s", length? " -> ": "", name);
    for (size_t index = 0; index < chorus_flowdef_steps (entry->def); index++) {
        const chorus_stepdef_t *step = chorus_flowdef_step (entry->def, index);
        if (!step->flow)
            continue;
        s_entry_t *callee = (s_entry_t *) zhashx_lookup (newest, step->flow);
        const char *seen = (const char *) zhashx_lookup (color, step->flow);
        if (seen && streq (seen, "visiting")) {
            snprintf (error, error_size, "%s/%s:%d:%d: step '%s' runs the flow '%s', which "
                      "runs it again: %s -> %s (a flow cannot call itself, directly or "
                      "through other flows)", self->dir, entry->file, step->flow_line,
                      step->flow_column, step->id, step->flow, path, step->flow);
            return -1;
        }
        if (!seen && callee
        &&  s_visit_calls (self, newest, callee, color, path, path_size, error, error_size))
            return -1;
    }
    path [length] = 0;
    zhashx_update (color, name, (void *) "done");
    return 0;
}

//  Every flow a step runs is defined in the directory, and no flow runs
//  itself, directly or through others (new flows start on the newest
//  versions, so those are checked); 0, or -1 with the problem in error
static int
s_check_calls (chorus_defset_t *self, zlistx_t *entries, char *error, size_t error_size)
{
    zhashx_t *newest = s_newest_of (entries);
    int rc = 0;
    for (s_entry_t *entry = (s_entry_t *) zlistx_first (entries); entry && rc == 0;
         entry = (s_entry_t *) zlistx_next (entries))
        for (size_t index = 0; index < chorus_flowdef_steps (entry->def) && rc == 0; index++) {
            const chorus_stepdef_t *step = chorus_flowdef_step (entry->def, index);
            if (step->flow && !zhashx_lookup (newest, step->flow)) {
                snprintf (error, error_size, "%s/%s:%d:%d: step '%s' runs the flow '%s', which "
                          "no file of %s defines", self->dir, entry->file, step->flow_line,
                          step->flow_column, step->id, step->flow, self->dir);
                rc = -1;
            }
        }
    zhashx_t *color = zhashx_new ();
    //  Names of at most 64 characters, each flow once on a path
    size_t path_size = 70 * (zlistx_size (entries) + 2);
    char *path = (char *) zmalloc (path_size);
    for (s_entry_t *entry = (s_entry_t *) zlistx_first (entries); entry && rc == 0;
         entry = (s_entry_t *) zlistx_next (entries))
        if (zhashx_lookup (newest, chorus_flowdef_name (entry->def)) == entry
        &&  !zhashx_lookup (color, chorus_flowdef_name (entry->def))) {
            path [0] = 0;
            rc = s_visit_calls (self, newest, entry, color, path, path_size, error, error_size);
        }
    free (path);
    zhashx_destroy (&color);
    zhashx_destroy (&newest);
    return rc;
}

int
chorus_defset_load (chorus_defset_t *self, uint64_t now, char *error, size_t error_size)
{
    //  Taken before reading, so that a change made while we read is seen
    char *signature = s_signature (self->dir);
    free (self->signature);
    self->signature = signature;
    zlistx_t *names = s_names (self->dir);
    if (!names) {
        snprintf (error, error_size, "%s: cannot read the flows directory: %s", self->dir,
                  strerror (errno));
        return s_failed (self, now, error);
    }
    //  Every file loads, and every name and version means one text, or
    //  nothing changes
    zlistx_t *loaded = zlistx_new ();
    zlistx_set_destructor (loaded, s_entry_destroy);
    zlistx_set_comparator (loaded, s_entry_compare);
    zhashx_t *fresh = zhashx_new ();        //  "name/version" -> new definition, owned
    zhashx_set_destructor (fresh, s_def_destroy);
    zhashx_t *files = zhashx_new ();        //  "name/version" -> its file
    int rc = 0;
    for (char *name = (char *) zlistx_first (names); name && rc == 0;
         name = (char *) zlistx_next (names)) {
        char *path = zsys_sprintf ("%s/%s", self->dir, name);
        chorus_flowdef_t *def = chorus_flowdef_load (path, error, error_size);
        char *key = def? s_key (def): NULL;
        chorus_flowdef_t *known = key? (chorus_flowdef_t *) zhashx_lookup (self->known, key):
                                  NULL;
        if (!def)
            rc = -1;
        else
        if (zhashx_lookup (files, key)) {
            snprintf (error, error_size, "%s: flow '%s' version %d is defined twice (also in "
                      "%s)", path, chorus_flowdef_name (def), chorus_flowdef_version (def),
                      (char *) zhashx_lookup (files, key));
            rc = -1;
        }
        else
        if (known && !streq (chorus_flowdef_source (known), chorus_flowdef_source (def))) {
            snprintf (error, error_size, "%s: flow '%s' version %d changed, but flows may "
                      "run on the version %d already loaded: a changed definition needs a "
                      "higher version", path, chorus_flowdef_name (def),
                      chorus_flowdef_version (def), chorus_flowdef_version (def));
            rc = -1;
        }
        if (rc == 0) {
            zhashx_insert (files, key, name);
            s_entry_t *entry = (s_entry_t *) zmalloc (sizeof (s_entry_t));
            entry->file = strdup (name);
            entry->loaded = now;
            if (known)
                entry->def = known;         //  the same text: the same definition
            else {
                entry->def = def;
                zhashx_insert (fresh, key, def);
                def = NULL;
            }
            //  A file that held this version at the last load keeps its time
            for (s_entry_t *old = (s_entry_t *) zlistx_first (self->deployed); old;
                 old = (s_entry_t *) zlistx_next (self->deployed))
                if (old->def == entry->def && streq (old->file, entry->file))
                    entry->loaded = old->loaded;
            zlistx_add_end (loaded, entry);
        }
        chorus_flowdef_destroy (&def);
        free (key);
        free (path);
    }
    zhashx_destroy (&files);
    zlistx_destroy (&names);
    if (rc == 0)
        rc = s_check_calls (self, loaded, error, error_size);
    if (rc) {
        zhashx_destroy (&fresh);
        zlistx_destroy (&loaded);
        return s_failed (self, now, error);
    }
    //  Committed: the new versions join the known ones, for good
    for (chorus_flowdef_t *def = (chorus_flowdef_t *) zhashx_first (fresh); def;
         def = (chorus_flowdef_t *) zhashx_next (fresh))
        zhashx_insert (self->known, (const char *) zhashx_cursor (fresh), def);
    zhashx_set_destructor (fresh, NULL);
    zhashx_destroy (&fresh);
    zlistx_destroy (&self->deployed);
    self->deployed = loaded;
    zhashx_purge (self->newest);
    for (s_entry_t *entry = (s_entry_t *) zlistx_first (loaded); entry;
         entry = (s_entry_t *) zlistx_next (loaded)) {
        const char *name = chorus_flowdef_name (entry->def);
        chorus_flowdef_t *newest = (chorus_flowdef_t *) zhashx_lookup (self->newest, name);
        if (!newest || chorus_flowdef_version (newest) < chorus_flowdef_version (entry->def))
            zhashx_update (self->newest, name, entry->def);
    }
    self->loaded = now;
    free (self->error);
    self->error = NULL;
    return 0;
}

chorus_flowdef_t *
chorus_defset_newest (chorus_defset_t *self, const char *name)
{
    return (chorus_flowdef_t *) zhashx_lookup (self->newest, name);
}

chorus_flowdef_t *
chorus_defset_first (chorus_defset_t *self)
{
    return (chorus_flowdef_t *) zhashx_first (self->newest);
}

chorus_flowdef_t *
chorus_defset_next (chorus_defset_t *self)
{
    return (chorus_flowdef_t *) zhashx_next (self->newest);
}

chorus_flowdef_t *
chorus_defset_version (chorus_defset_t *self, const char *name, int version)
{
    char *key = zsys_sprintf ("%s/%d", name, version);
    chorus_flowdef_t *def = (chorus_flowdef_t *) zhashx_lookup (self->known, key);
    free (key);
    return def;
}

chorus_flowdef_t *
chorus_defset_keep (chorus_defset_t *self, chorus_flowdef_t *def)
{
    char *key = s_key (def);
    chorus_flowdef_t *known = (chorus_flowdef_t *) zhashx_lookup (self->known, key);
    if (known)
        chorus_flowdef_destroy (&def);
    else
        zhashx_insert (self->known, key, def);
    free (key);
    return known? known: def;
}

json_t *
chorus_defset_json (chorus_defset_t *self)
{
    json_t *list = json_array ();
    for (s_entry_t *entry = (s_entry_t *) zlistx_first (self->deployed); entry;
         entry = (s_entry_t *) zlistx_next (self->deployed)) {
        chorus_flowdef_t *def = entry->def;
        json_array_append_new (list, json_pack ("{s:s, s:i, s:s, s:s?, s:I, s:b}",
            "flow", chorus_flowdef_name (def), "version", chorus_flowdef_version (def),
            "file", entry->file, "trigger", chorus_flowdef_trigger (def),
            "loaded", (json_int_t) entry->loaded,
            "newest", chorus_defset_newest (self, chorus_flowdef_name (def)) == def));
    }
    json_t *reply = json_pack ("{s:s, s:I, s:o}", "directory", self->dir,
                               "loaded", (json_int_t) self->loaded, "definitions", list);
    if (self->error)
        json_object_set_new (reply, "error", json_pack ("{s:s, s:I}", "message", self->error,
                                                        "time", (json_int_t) self->failed));
    return reply;
}

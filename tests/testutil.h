/*  testutil.h — what the integration tests share: temporary directories,
    child processes (the node_helper program) with a line protocol on their
    stdout, and running several in-process nodes until a condition holds.
*/
#ifndef CHORUS_TESTUTIL_H_INCLUDED
#define CHORUS_TESTUTIL_H_INCLUDED

#define _GNU_SOURCE
#include "chorus.h"

#include <czmq.h>
#include "tap.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

//  Every test program runs its own mesh, inherited by the processes it
//  starts, so that tests running at the same time never meet each other
//  through a reused port
__attribute__ ((constructor)) static void
test_mesh_init (void)
{
    if (!getenv ("CHORUS_MESH")) {
        char mesh [64];
        snprintf (mesh, sizeof (mesh), "test-%d", (int) getpid ());
        setenv ("CHORUS_MESH", mesh, 1);
    }
}

//  A fresh directory under TMPDIR (or /tmp); the caller frees the string
static inline char *
test_tempdir (const char *name)
{
    const char *base = getenv ("TMPDIR");
    char *path = zsys_sprintf ("%s/chorus-%s-XXXXXX", base && *base? base: "/tmp", name);
    if (!mkdtemp (path)) {
        free (path);
        bail_out ("cannot make a temporary directory");
    }
    return path;
}

//  The same, made the home of temporary files for the rest of the test and
//  the processes it starts (TMPDIR): a node without a store makes its
//  temporary one there, and one the test kills cannot remove it
static inline char *
test_tempdir_home (const char *name)
{
    char *path = test_tempdir (name);
    setenv ("TMPDIR", path, 1);
    return path;
}

static inline int
test_remove_one (const char *path, const struct stat *info, int flag, struct FTW *ftw)
{
    return remove (path);
}

//  Removes a directory tree and frees its name
static inline void
test_tempdir_remove (char **path_p)
{
    if (*path_p) {
        nftw (*path_p, test_remove_one, 16, FTW_DEPTH | FTW_PHYS);
        free (*path_p);
        *path_p = NULL;
    }
}

//  A child process whose stdout we read line by line
typedef struct {
    pid_t pid;                  //  the child
    int out;                    //  read end of its stdout
    char buffer [8192];         //  bytes read, not yet returned as lines
    size_t used;                //  how many
} test_child_t;

//  Starts argv [0] (a path) with the arguments; NULL on failure
static inline test_child_t *
test_spawn (char *const argv [])
{
    int pipes [2];
    if (pipe (pipes))
        return NULL;
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init (&actions);
    posix_spawn_file_actions_adddup2 (&actions, pipes [1], 1);
    posix_spawn_file_actions_addclose (&actions, pipes [0]);
    test_child_t *child = (test_child_t *) calloc (1, sizeof (test_child_t));
    int rc = posix_spawn (&child->pid, argv [0], &actions, NULL, argv, environ);
    posix_spawn_file_actions_destroy (&actions);
    close (pipes [1]);
    if (rc) {
        close (pipes [0]);
        free (child);
        return NULL;
    }
    child->out = pipes [0];
    return child;
}

//  Reads the next line of the child's stdout into line (without newline),
//  waiting at most timeout_ms; returns 0, or -1 on timeout or end
static inline int
test_child_line (test_child_t *child, char *line, size_t size, int timeout_ms)
{
    int64_t end = zclock_mono () + timeout_ms;
    while (true) {
        char *newline = (char *) memchr (child->buffer, '\n', child->used);
        if (newline) {
            size_t length = (size_t) (newline - child->buffer);
            snprintf (line, size, "%.*s", (int) length, child->buffer);
            memmove (child->buffer, newline + 1, child->used - length - 1);
            child->used -= length + 1;
            return 0;
        }
        int64_t left = end - zclock_mono ();
        if (left <= 0 || child->used == sizeof (child->buffer))
            return -1;
        struct pollfd item = {child->out, POLLIN, 0};
        if (poll (&item, 1, (int) left) <= 0)
            continue;
        ssize_t got = read (child->out, child->buffer + child->used,
                            sizeof (child->buffer) - child->used);
        if (got <= 0)
            return -1;
        child->used += (size_t) got;
    }
}

//  Waits for a line starting with prefix; copies the rest into rest
static inline int
test_child_expect (test_child_t *child, const char *prefix, char *rest, size_t size,
                   int timeout_ms)
{
    int64_t end = zclock_mono () + timeout_ms;
    char line [1024];
    while (zclock_mono () < end) {
        if (test_child_line (child, line, sizeof (line), (int) (end - zclock_mono ())))
            return -1;
        if (strncmp (line, prefix, strlen (prefix)) == 0) {
            if (rest && size) {
                size_t length = strlen (line + strlen (prefix));
                length = length < size - 1? length: size - 1;
                memcpy (rest, line + strlen (prefix), length);
                rest [length] = 0;
            }
            return 0;
        }
    }
    return -1;
}

//  Sends a signal and reaps the child; returns its wait status
static inline int
test_child_stop (test_child_t **child_p, int signal)
{
    test_child_t *child = *child_p;
    int status = -1;
    if (child) {
        kill (child->pid, signal);
        waitpid (child->pid, &status, 0);
        close (child->out);
        free (child);
        *child_p = NULL;
    }
    return status;
}

//  The node_helper program, next to the test programs
static inline const char *
test_helper_path (void)
{
    static char path [1024];
    const char *builddir = getenv ("top_builddir");
    snprintf (path, sizeof (path), "%.900s/tests/node_helper", builddir? builddir: ".");
    return path;
}

//  Runs the nodes' handlers until done (arg) returns true or timeout_ms
//  passes; returns true if it became true
typedef bool (test_done_fn) (void *arg);

//  Nodes run inline (chorus_node_set_inline) have no socket to wait on:
//  they take turns, a dispatch each, with a short wait between rounds
static inline bool
test_run_until (chorus_node_t **nodes, size_t count, test_done_fn *done, void *arg,
                int timeout_ms)
{
    int64_t end = zclock_mono () + timeout_ms;
    zpoller_t *poller = zpoller_new (NULL);
    bool inline_nodes = false;
    for (size_t i = 0; i < count; i++)
        if (nodes [i] && chorus_node_socket (nodes [i]))
            zpoller_add (poller, chorus_node_socket (nodes [i]));
        else
        if (nodes [i])
            inline_nodes = true;
    bool result = false;
    while (!(result = done (arg)) && zclock_mono () < end) {
        zpoller_wait (poller, inline_nodes? 1: 10);
        for (size_t i = 0; i < count; i++)
            if (nodes [i])
                chorus_node_dispatch (nodes [i]);
    }
    zpoller_destroy (&poller);
    return result;
}

//  Records the events a handler took: how often each id, how many runs
typedef struct {
    zhashx_t *ids;              //  event id -> times handled
    int total;                  //  handler runs
    int twice;                  //  events handled more than once
} test_record_t;

//  An event handler (chorus_node_subscribe) that records into arg, a
//  test_record_t
static inline int
test_record_event (chorus_node_t *node, chorus_event_t *event, void *arg)
{
    test_record_t *record = (test_record_t *) arg;
    size_t times = (size_t) zhashx_lookup (record->ids, chorus_event_id (event));
    if (times)
        record->twice++;
    zhashx_update (record->ids, chorus_event_id (event), (void *) (times + 1));
    record->total++;
    return 0;
}

//  A test_done_fn over a record: true once it holds want distinct events
typedef struct {
    test_record_t *record;      //  what the handler took
    int want;                   //  how many distinct events
} test_record_wait_t;

static inline bool
test_record_reached (void *arg)
{
    test_record_wait_t *wait = (test_record_wait_t *) arg;
    return (int) zhashx_size (wait->record->ids) >= wait->want;
}

//  Counts the live peers a node knows of a service (NULL: any)
typedef struct {
    const char *service;        //  which service to count, NULL for all
    int count;                  //  how many
} test_peer_count_t;

static inline void
test_count_peer (chorus_node_t *node, const chorus_peer_t *peer, void *arg)
{
    test_peer_count_t *count = (test_peer_count_t *) arg;
    if (!count->service || streq (count->service, peer->service))
        count->count++;
}

static inline int
test_peers (chorus_node_t *node, const char *service)
{
    test_peer_count_t count = {service, 0};
    chorus_node_peers (node, test_count_peer, &count);
    return count.count;
}

//  Test nodes use short liveness times so that expiry tests stay quick
#define TEST_HEARTBEAT_MS 200
#define TEST_EVASIVE_MS 600
#define TEST_EXPIRED_MS 1000

static inline chorus_node_t *
test_node (const char *service, const char *store, const char *seed)
{
    chorus_node_t *node = chorus_node_new (service);
    if (store)
        chorus_node_set_store (node, store);
    if (seed)
        chorus_node_add_seed (node, seed);
    chorus_node_set_heartbeat (node, TEST_HEARTBEAT_MS, TEST_EVASIVE_MS, TEST_EXPIRED_MS);
    chorus_node_set_verbose (node, getenv ("CHORUS_VERBOSE") != NULL);
    //  The same test again with every node's engine in the test's thread
    chorus_node_set_inline (node, getenv ("CHORUS_TEST_INLINE") != NULL);
    return node;
}

#endif

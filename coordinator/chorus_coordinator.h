/*  chorus_coordinator.h — the coordinator: a node of service "coordinator"
    that runs flows. It loads the definitions, starts a flow for each
    trigger event (as group "coordinator", so several coordinators share
    the work) or flow.start command, feeds replies and timers to the pure
    engine, journals every transition before sending what it produced, and
    after a crash resumes every flow where it was. It also keeps the causal
    trace of every correlation id it observes on the mesh.
*/
#ifndef CHORUS_COORDINATOR_H_INCLUDED
#define CHORUS_COORDINATOR_H_INCLUDED

#include "chorus.h"

#include <czmq.h>

typedef struct _chorus_coordinator_t chorus_coordinator_t;

typedef struct {
    const char *flows_dir;      //  directory of *.yaml definitions
    const char *store_dir;      //  node store and journal live under it
    const char *listen;         //  inbox endpoint, NULL: the library's default
    const char *advertise;      //  HOST[:PORT] announced, NULL: $CHORUS_ADVERTISE or found
    const char *metrics;        //  HOST:PORT of /metrics, NULL: $CHORUS_METRICS or none
    const char *mesh;           //  mesh name, NULL: $CHORUS_MESH or "default"
    const char **seeds;         //  seed endpoints, NULL-terminated, may be NULL
    int beacon_port;            //  UDP beacon, 0: off
    size_t keep_finished;       //  finished flows kept for status (0: 10000)
    bool journal_sync;          //  fsync every journal commit (default true)
    int heartbeat_ms;           //  liveness (0: the library's defaults)
    int evasive_ms;             //  (0: default)
    int expired_ms;             //  (0: default)
    bool verbose;               //  log to stderr
    const char *cert_file;      //  secret certificate of a secure node, NULL: plaintext
    const char *trust_dir;      //  public certificates to accept (with cert_file)
    const char *http;           //  HOST:PORT of the web console, NULL: none
    const char *http_token;     //  the bearer token its API needs, NULL: none
    unsigned stuck_after_s;     //  a running flow unchanged this long counts as stuck at
                                //  /metrics (0: an hour)
} chorus_coordinator_config_t;

//  Loads every definition in the flows directory. On failure returns NULL
//  with "file:line:column: problem" (or another reason) in error.
chorus_coordinator_t *
    chorus_coordinator_new (const chorus_coordinator_config_t *config, char *error,
                            size_t error_size);
void
    chorus_coordinator_destroy (chorus_coordinator_t **self_p);

//  Opens the journal, recovers the journaled flows and joins the mesh; 0,
//  or -1 with chorus_coordinator_error. A journal or node store that is
//  damaged (corrupt, torn, with commits missing, or a record that does not
//  decode or load) is refused, never taken for an empty one: see
//  chorus_coordinator_damaged.
int
    chorus_coordinator_start (chorus_coordinator_t *self);

//  Runs for up to timeout_ms (-1: until interrupted); 0, or -1 when
//  interrupted or when the journal turned out damaged (then
//  chorus_coordinator_damaged is true)
int
    chorus_coordinator_run (chorus_coordinator_t *self, int timeout_ms);

//  Why start or run failed: for a damaged store, what is damaged and the
//  commands that check and repair it
const char *
    chorus_coordinator_error (chorus_coordinator_t *self);
//  Whether the journal or the node store is damaged (the daemon exits 5)
bool
    chorus_coordinator_damaged (chorus_coordinator_t *self);

chorus_node_t *
    chorus_coordinator_node (chorus_coordinator_t *self);
//  HOST:PORT the web console serves on (config.http), NULL: none
const char *
    chorus_coordinator_console_address (chorus_coordinator_t *self);

//  Loads the flows directory again, whole or not at all: new flows start on
//  its definitions (the highest version of each name), running flows keep
//  theirs. 0, or -1 when a file does not load (logged as an error with its
//  file:line:column, and kept for flow.defs): the definitions loaded before
//  stay in force. The coordinator also does this by itself when the
//  directory changes, and after chorus_coordinator_hangup.
int
    chorus_coordinator_reload (chorus_coordinator_t *self);

//  Asks every coordinator of the process to reload its flows directory
//  (chorus_coordinator_reload) at its next turn. Async-signal-safe: a
//  SIGHUP handler may call it.
void
    chorus_coordinator_hangup (void);

//  Validates every *.yaml in dir; 0, or -1 with the first error
int
    chorus_coordinator_check (const char *dir, char *error, size_t error_size);

#endif

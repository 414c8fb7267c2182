/*  chorus_cli.h — what the subcommands of the `chorus` tool share: the
    mesh options every one of them takes, making a node from them, printing
    events and peers, and running a shell command as a handler.
*/
#ifndef CHORUS_CLI_H_INCLUDED
#define CHORUS_CLI_H_INCLUDED

#include "chorus.h"

#include <czmq.h>

#include <getopt.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

//  Exit statuses every subcommand shares; each adds its own above these
#define CHORUS_CLI_OK 0
#define CHORUS_CLI_FAILED 1
#define CHORUS_CLI_USAGE 2
#define CHORUS_CLI_NO_REPLY 4       //  a command got no reply in time
#define CHORUS_CLI_INTERRUPTED 130
//  Returned by the option helpers while parsing should go on
#define CHORUS_CLI_CONTINUE -1
#define CHORUS_CLI_DAMAGED 5        //  exit status: a store is damaged

//  getopt_long values of the shared options, clear of every short option
//  character so that a subcommand's own values cannot collide with them
enum {
    CHORUS_CLI_OPT_HELP = 'h',
    CHORUS_CLI_OPT_LISTEN = 0x100,
    CHORUS_CLI_OPT_SEED,
    CHORUS_CLI_OPT_STORE,
    CHORUS_CLI_OPT_BEACON,
    CHORUS_CLI_OPT_VERBOSE,
    CHORUS_CLI_OPT_JSON,
    CHORUS_CLI_OPT_LONG_HELP,       //  --help; -h is 'h', so that every long
                                    //  option's value tells it from a short one
    CHORUS_CLI_OPT_MESH,
    CHORUS_CLI_OPT_CERT,
    CHORUS_CLI_OPT_TRUST,
    CHORUS_CLI_OPT_ADVERTISE,
    CHORUS_CLI_OPT_METRICS,
    CHORUS_CLI_OPT_OWN = 0x200      //  first value for a subcommand's options
};

//  Entries for a subcommand's struct option table: the mesh options, and
//  --json for the subcommands whose output is data
#define CHORUS_CLI_MESH_OPTIONS                                               \
    { "listen", required_argument, NULL, CHORUS_CLI_OPT_LISTEN },             \
    { "advertise", required_argument, NULL, CHORUS_CLI_OPT_ADVERTISE },       \
    { "metrics", required_argument, NULL, CHORUS_CLI_OPT_METRICS },           \
    { "mesh", required_argument, NULL, CHORUS_CLI_OPT_MESH },                 \
    { "seed", required_argument, NULL, CHORUS_CLI_OPT_SEED },                 \
    { "store", required_argument, NULL, CHORUS_CLI_OPT_STORE },               \
    { "beacon", required_argument, NULL, CHORUS_CLI_OPT_BEACON },             \
    { "verbose", no_argument, NULL, CHORUS_CLI_OPT_VERBOSE },                 \
    { "cert", required_argument, NULL, CHORUS_CLI_OPT_CERT },                 \
    { "trust", required_argument, NULL, CHORUS_CLI_OPT_TRUST },               \
    { "help", no_argument, NULL, CHORUS_CLI_OPT_LONG_HELP }
#define CHORUS_CLI_JSON_OPTION { "json", no_argument, NULL, CHORUS_CLI_OPT_JSON }

//  getopt_long short options for every subcommand: ':' to tell a missing
//  value from an unknown option, and -h
#define CHORUS_CLI_SHORT_OPTIONS ":h"

typedef void (chorus_cli_usage_fn) (FILE *out);

//  The shared options of one subcommand run
typedef struct {
    const char *name;               //  the subcommand, to prefix messages
    chorus_cli_usage_fn *usage;     //  prints the subcommand's --help
    const char *listen;             //  --listen, or NULL for the library's default
    const char *advertise;          //  --advertise, or NULL for CHORUS_ADVERTISE or found
    const char *metrics;            //  --metrics, or NULL for CHORUS_METRICS or none
    const char *mesh;               //  --mesh, or NULL for CHORUS_MESH or "default"
    zlist_t *seeds;                 //  --seed and CHORUS_SEEDS endpoints (char *)
    const char *store;              //  --store, or NULL for the subcommand's default
    int beacon;                     //  --beacon port, 0 for none
    bool verbose;                   //  --verbose
    bool json;                      //  --json: one JSON object per output line
    const char *cert;               //  --cert, else CHORUS_CERT: the node's secret
                                    //  certificate; NULL for a plaintext node
    const char *trust;              //  --trust, else CHORUS_TRUST: the directory of
                                    //  the public certificates to accept
    char reply_code [64];           //  the code of the last error reply chorus_cli_call
                                    //  got, "" after any other outcome
} chorus_cli_t;

//  Options and messages

//  Prepare for a subcommand's getopt_long loop (which starts afresh)
void
    chorus_cli_init (chorus_cli_t *self, const char *name, chorus_cli_usage_fn *usage);
//  Free what the options hold
void
    chorus_cli_release (chorus_cli_t *self);
//  Handle a getopt_long result that is not the subcommand's own: a shared
//  option, --help, an unknown option or a missing value. Returns
//  CHORUS_CLI_CONTINUE, or the status to exit with.
int
    chorus_cli_option (chorus_cli_t *self, int opt, char **argv);
//  Check the shared options together, once the subcommand's getopt_long
//  loop is done and before anything starts: --cert and --trust (with
//  CHORUS_CERT and CHORUS_TRUST, which the options override) go together.
//  Returns CHORUS_CLI_CONTINUE, or CHORUS_CLI_USAGE after a message.
int
    chorus_cli_check (chorus_cli_t *self);
//  Print "chorus NAME: ..." to stderr
void
    chorus_cli_error (chorus_cli_t *self, const char *format, ...)
    __attribute__ ((format (printf, 2, 3)));
//  Print "chorus NAME: ...: WHY: DETAIL" for a libchorus call that failed
//  with code: WHY is chorus_strerror (code), DETAIL chorus_node_error
//  (node) when it says more (node NULL for a call without one). The
//  library logs no errors of its own in the tool (see chorus.c): this is
//  where the reason of a failure is shown.
void
    chorus_cli_failed (chorus_cli_t *self, chorus_node_t *node, int code, const char *format,
                       ...) __attribute__ ((format (printf, 4, 5)));
//  As chorus_cli_error, pointing at --help; returns CHORUS_CLI_USAGE
int
    chorus_cli_usage_error (chorus_cli_t *self, const char *format, ...)
    __attribute__ ((format (printf, 2, 3)));
//  Parse an option's whole number in [min, max]; 0, or -1 after a message
int
    chorus_cli_parse_int (chorus_cli_t *self, const char *option, const char *text,
                          long long min, long long max, long long *value);
//  Parse an option's seconds (fractions allowed, at least min_seconds)
//  into milliseconds; 0, or -1 after a message
int
    chorus_cli_parse_seconds (chorus_cli_t *self, const char *option, const char *text,
                              double min_seconds, int *ms);
//  Print the help of the mesh options; store_default says what --store
//  defaults to for this subcommand
void
    chorus_cli_print_mesh_help (FILE *out, const char *store_default);

//  mkdir -p, each directory made private (0700): a store holds whatever
//  was published, a key directory secret keys. 0, or -1 with errno.
int
    chorus_cli_make_dirs (const char *path);

//  Nodes

//  Make a node for service, configured from the options. Its store is
//  --store, else store_name under the data directory
//  ($XDG_DATA_HOME/chorus or ~/.local/share/chorus), else (store_name NULL)
//  a temporary one. Returns NULL after a message.
chorus_node_t *
    chorus_cli_node_new (chorus_cli_t *self, const char *service, const char *store_name);
//  Start the node; 0, or the library's code after a message
int
    chorus_cli_node_start (chorus_cli_t *self, chorus_node_t *node);
//  The exit status for a node that failed with code: CHORUS_CLI_DAMAGED
//  for a damaged store, else CHORUS_CLI_FAILED
int
    chorus_cli_failure (int code);
//  A store directory name from a subcommand and a service or topic, with
//  every character that is not safe in a file name replaced; free it
char *
    chorus_cli_store_name (const char *subcommand, const char *what);

//  Send command to one instance of service with payload (borrowed; NULL
//  for none) and wait for the reply, at most timeout_ms and a grace
//  period. idempotency and correlation may be NULL, as for
//  chorus_node_send_traced. Returns CHORUS_CLI_OK with the reply's payload
//  in *reply (new reference; JSON null for none), or after a message on
//  stderr: CHORUS_CLI_FAILED for an error reply ("CODE: MESSAGE"),
//  CHORUS_CLI_NO_REPLY or CHORUS_CLI_INTERRUPTED.
int
    chorus_cli_call (chorus_cli_t *self, chorus_node_t *node, const char *service,
                     const char *command, const json_t *payload, int timeout_ms,
                     const char *idempotency, const char *correlation, json_t **reply);

//  Output

//  Print a JSON value (taking it) as one compact line and flush; 0, or -1
//  when stdout fails (a closed pipe) or the value could not be encoded
int
    chorus_cli_print_json (json_t *value);
//  A JSON string for text that may not be UTF-8 (bytes that are not become
//  '?'); JSON null for NULL
json_t *
    chorus_cli_json_text (const char *text);
//  A payload as a JSON value: its MessagePack as JSON, null for none
json_t *
    chorus_cli_payload_json (const void *data, size_t size);
//  Milliseconds since the epoch as "2024-05-01T12:00:00.123Z" (UTC) and as
//  "12:00:00.123" (local time)
void
    chorus_cli_time_iso (uint64_t ms, char *buffer, size_t size);
void
    chorus_cli_time_clock (uint64_t ms, char *buffer, size_t size);
//  "joined", "evasive", "alive", "expired", "left"
const char *
    chorus_cli_peer_state_name (chorus_peer_state_t state);

//  Shell commands as handlers (chorus_cli_shell.c)

//  What a shell command did
typedef struct {
    int status;                     //  exit status; 128 + N when killed by signal N
    char *out;                      //  its stdout (NUL-terminated), when captured
    size_t out_size;                //  bytes in out
    bool out_overflow;              //  stdout went past what is kept
    char *err;                      //  the start of its stderr, when captured
    size_t err_size;                //  bytes in err
} chorus_cli_shell_t;

//  Add NAME=VALUE to an environment list (VALUE NULL: empty)
void
    chorus_cli_env_add (zlist_t *env, const char *name, const char *value);
void
    chorus_cli_env_add_number (zlist_t *env, const char *name, uint64_t value);
//  Free what a result holds
void
    chorus_cli_shell_release (chorus_cli_shell_t *result);
//  A child running /bin/sh -c command, which the caller polls among other
//  things so that several run at once and none holds up the node's thread.
//  It gets input on its stdin and this process's environment plus env
//  (NAME=VALUE strings, which win). Flags: CAPTURE collects its stdout and
//  stderr (else they are ours); LINES keeps its stdin open after the input
//  is written, for more (chorus_cli_child_write), and takes its stdout as
//  lines (chorus_cli_child_line), its stderr staying ours; a LINES child
//  that closes its stdin can take no more and is killed.
typedef struct _chorus_cli_child_t chorus_cli_child_t;
#define CHORUS_CLI_CHILD_CAPTURE 1
#define CHORUS_CLI_CHILD_LINES 2
//  Most poll items a child needs
#define CHORUS_CLI_CHILD_ITEMS 4

//  Start the child without waiting; NULL with errno when it could not be
//  started
chorus_cli_child_t *
    chorus_cli_child_new (const char *command, zlist_t *env, const char *input,
                          size_t input_size, int flags);
//  More input for a LINES child's stdin, written at once if the pipe has
//  room, else as it takes it; 0, or -1 once its stdin is closed
int
    chorus_cli_child_write (chorus_cli_child_t *self, const char *data, size_t size);
//  Fill items (room for CHORUS_CLI_CHILD_ITEMS) with what to poll; returns
//  how many
int
    chorus_cli_child_items (chorus_cli_child_t *self, zmq_pollitem_t *items);
//  False when the child's exit cannot be polled (no pidfd): the caller
//  then polls with a short timeout and calls chorus_cli_child_service
bool
    chorus_cli_child_polled (chorus_cli_child_t *self);
//  Move what the polled items say is ready and reap the child if it has
//  exited. True once it is done: exited and (with CAPTURE) its output
//  closed; a LINES child's last lines are then ready to take.
bool
    chorus_cli_child_service (chorus_cli_child_t *self, zmq_pollitem_t *items, int count);
//  A LINES child's next complete stdout line without its newline (free
//  it), or NULL while none has come
char *
    chorus_cli_child_line (chorus_cli_child_t *self);
//  True when a LINES child has written more than 8 MiB since its last
//  complete line: longer than any reply
bool
    chorus_cli_child_overflow (chorus_cli_child_t *self);
//  SIGKILL it, unless reaped
void
    chorus_cli_child_kill (chorus_cli_child_t *self);
//  Close its stdin, which asks a LINES child to end
void
    chorus_cli_child_close (chorus_cli_child_t *self);
//  Once done: its status and what was captured (release result)
void
    chorus_cli_child_result (chorus_cli_child_t *self, chorus_cli_shell_t *result);
pid_t
    chorus_cli_child_pid (chorus_cli_child_t *self);
//  Close our ends and reap it (a child still running after its stdin is
//  closed gets two seconds, then SIGKILL)
void
    chorus_cli_child_destroy (chorus_cli_child_t **self_p);

//  Handler processes (chorus_cli_pool.c): a job per message, at most N at
//  once, jobs with the same key one at a time and in the order added;
//  polled with the node's socket in chorus_cli_pool_run. Either a child
//  per job, or (persistent) N long-lived children taking one request line
//  at a time each and answering each with one line.

typedef struct _chorus_cli_pool_t chorus_cli_pool_t;

//  How a job ended
typedef struct {
    bool started;                   //  false: not run (the pool stopped first, or error)
    int error;                      //  errno when it could not be started, else 0
    chorus_cli_shell_t shell;       //  a child per job: what it did; persistent: the
                                    //  status of a child that ended before it answered
    pid_t pid;                      //  the child that ran it
    char *line;                     //  persistent: its reply line, NULL when the child
                                    //  ended (or wrote too long a line) before it answered
    json_t *reply;                  //  line as JSON, NULL when it is not JSON
    json_error_t json_error;        //  why line is not JSON
    bool overflow;                  //  persistent: the child wrote a line longer than
                                    //  any reply, and was killed
} chorus_cli_result_t;

//  Called in the node's thread as each job ends; result is freed after
typedef void (chorus_cli_pool_fn) (void *job_arg, chorus_cli_result_t *result, void *arg);

//  size children at most; persistent: the command of the size long-lived
//  children (NULL: a child per job, its output collected with capture);
//  cli names the subcommand in warnings
chorus_cli_pool_t *
    chorus_cli_pool_new (chorus_cli_t *cli, int size, const char *persistent, bool capture,
                         chorus_cli_pool_fn *done, void *arg);
void
    chorus_cli_pool_destroy (chorus_cli_pool_t **self_p);
//  Queue a job with input (taken): a child per job runs shell (kept) with
//  env (taken; may be NULL); a persistent child gets input as its request
//  line, and a JSON object it writes that carries an "id" other than id is
//  a line no request asked for. The job runs after every earlier job of key
//  (NULL: no order); one still waiting at deadline (ms since the epoch, 0:
//  none) ends unrun with error ETIMEDOUT. 0, or -1 out of memory.
int
    chorus_cli_pool_add (chorus_cli_pool_t *self, const char *shell, zlist_t **env_p,
                         char **input_p, const char *id, const char *key, uint64_t deadline,
                         void *arg);
//  Dispatch the node and run the jobs its handlers add until interrupted;
//  the jobs running then finish, those not started end unrun. Returns
//  0, -1 when interrupted, -2 when the node's store is damaged (the node's
//  chorus_node_error says how).
int
    chorus_cli_pool_run (chorus_cli_pool_t *self, chorus_node_t *node);

//  What a --persistent handler's reply line says (chorus_cli_line.c)
typedef struct {
    char problem [128];             //  why the line is not a reply; empty when it is
    json_t *payload;                //  "payload" (borrowed), NULL for none
    const char *code;               //  the error's "code" (borrowed), NULL for a success
    const char *message;            //  the error's "message" (borrowed), NULL for none
    bool retryable;                 //  the error's "retryable", true when left out
} chorus_cli_line_t;

//  Read a reply line, reply being the line as JSON (NULL when it is not,
//  error then saying why); payloads false ignores "payload", as events do.
//  0, or -1 when it is not a reply, problem saying why. self borrows from
//  reply.
int
    chorus_cli_line_read (chorus_cli_line_t *self, json_t *reply, const json_error_t *error,
                          bool payloads);
//  "exited with status N" or "was killed by signal N" for an exit status
//  as chorus_cli_shell_t gives it
void
    chorus_cli_status_text (int status, char *text, size_t size);

//  Strip leading and trailing white space in place; returns the new length
size_t
    chorus_cli_trim (char *text, size_t size);

//  The subcommands; each takes the arguments after "chorus" and returns
//  the exit status

int chorus_cmd_publish (int argc, char **argv);
int chorus_cmd_send (int argc, char **argv);
int chorus_cmd_serve (int argc, char **argv);
int chorus_cmd_on (int argc, char **argv);
int chorus_cmd_tail (int argc, char **argv);
int chorus_cmd_peers (int argc, char **argv);
int chorus_cmd_flow (int argc, char **argv);
int chorus_cmd_store (int argc, char **argv);
int chorus_cmd_keygen (int argc, char **argv);
int chorus_cmd_top (int argc, char **argv);

#endif

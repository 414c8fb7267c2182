/*  chorus_cli_shell.c — runs a shell command as a handler for `chorus serve`
    and `chorus on`: input on its stdin, its stdout and stderr collected
    together through poll so that neither pipe can fill up and deadlock us;
    either waiting for it, or as a child the caller polls among others.
*/
//  pipe2 and O_CLOEXEC pipes, so that no other child inherits our ends
#define _GNU_SOURCE
#include "chorus_cli.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

//  What we keep of the output: a reply payload is at most 1 MiB of
//  MessagePack, so more JSON than this cannot become one anyway; stderr
//  only becomes a short error message.
#define S_OUT_MAX (8 * 1024 * 1024)
#define S_ERR_MAX (16 * 1024)
//  Bytes taken from a pipe at a time
#define S_CHUNK 16384

//  One pipe from the child, and what came through it
typedef struct {
    int fd;                 //  read end, -1 once closed
    char *data;             //  bytes kept, NUL-terminated
    size_t size;            //  bytes in data
    size_t capacity;        //  bytes allocated for data, grown by doubling
    size_t max;             //  most bytes kept; the rest are read and dropped
    bool overflow;          //  more came than max
} s_sink_t;

void
chorus_cli_env_add (zlist_t *env, const char *name, const char *value)
{
    char *entry = zsys_sprintf ("%s=%s", name, value? value: "");
    if (entry)
        zlist_append (env, entry);
    zstr_free (&entry);
}

void
chorus_cli_env_add_number (zlist_t *env, const char *name, uint64_t value)
{
    char text [24];
    snprintf (text, sizeof (text), "%" PRIu64, value);
    chorus_cli_env_add (env, name, text);
}

size_t
chorus_cli_trim (char *text, size_t size)
{
    size_t start = 0;
    while (start < size && strchr (" \t\r\n\f\v", text [start]) && text [start])
        start++;
    while (size > start && strchr (" \t\r\n\f\v", text [size - 1]) && text [size - 1])
        size--;
    memmove (text, text + start, size - start);
    text [size - start] = 0;
    return size - start;
}

//  Our environment with env's names replaced by env's values; free the
//  array, not the strings
static char **
s_environment (zlist_t *env)
{
    size_t count = 0;
    while (environ [count])
        count++;
    char **result = calloc (count + (env? zlist_size (env): 0) + 1, sizeof (char *));
    if (!result)
        return NULL;
    size_t used = 0;
    for (size_t index = 0; index < count; index++) {
        const char *entry = environ [index];
        size_t name_size = strcspn (entry, "=");
        bool replaced = false;
        for (char *ours = env? zlist_first (env): NULL; ours && !replaced; ours = zlist_next (env))
            replaced = strncmp (ours, entry, name_size + 1) == 0;
        if (!replaced)
            result [used++] = (char *) entry;
    }
    for (char *ours = env? zlist_first (env): NULL; ours; ours = zlist_next (env))
        result [used++] = ours;
    return result;
}

static void
s_close (int *fd)
{
    if (*fd >= 0)
        close (*fd);
    *fd = -1;
}

//  Read what is there; closes the pipe at end of file. Returns the bytes
//  read, 0 at end of file, -1 when nothing is there yet.
static ssize_t
s_sink_read (s_sink_t *self)
{
    char chunk [S_CHUNK];
    ssize_t got = read (self->fd, chunk, sizeof (chunk));
    if (got < 0 && (errno == EINTR || errno == EAGAIN))
        return -1;
    if (got <= 0) {
        s_close (&self->fd);
        return 0;
    }
    size_t keep = (size_t) got;
    if (self->size + keep > self->max) {
        keep = self->max - self->size;
        self->overflow = true;
    }
    if (self->size + keep + 1 > self->capacity) {
        //  Doubled, so that a long output is not copied once per chunk
        size_t capacity = self->capacity? self->capacity * 2: S_CHUNK + 1;
        if (capacity < self->size + keep + 1)
            capacity = self->size + keep + 1;
        if (capacity > self->max + 1)
            capacity = self->max + 1;
        char *data = realloc (self->data, capacity);
        if (!data) {
            self->overflow = true;
            return got;
        }
        self->data = data;
        self->capacity = capacity;
    }
    memcpy (self->data + self->size, chunk, keep);
    self->size += keep;
    self->data [self->size] = 0;
    return got;
}

//  Start /bin/sh -c command with stdin (and with capture stdout and
//  stderr) on our pipe ends. The child gets the default handling of the
//  signals this tool catches or ignores.
static int
s_spawn (const char *command, char **envp, int in, int out, int err, pid_t *pid)
{
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init (&actions);
    posix_spawn_file_actions_adddup2 (&actions, in, STDIN_FILENO);
    if (out >= 0)
        posix_spawn_file_actions_adddup2 (&actions, out, STDOUT_FILENO);
    if (err >= 0)
        posix_spawn_file_actions_adddup2 (&actions, err, STDERR_FILENO);
    posix_spawnattr_t attributes;
    posix_spawnattr_init (&attributes);
    sigset_t signals;
    sigemptyset (&signals);
    posix_spawnattr_setsigmask (&attributes, &signals);
    sigaddset (&signals, SIGPIPE);
    sigaddset (&signals, SIGINT);
    sigaddset (&signals, SIGTERM);
    posix_spawnattr_setsigdefault (&attributes, &signals);
    posix_spawnattr_setflags (&attributes, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    char *argv [] = { "sh", "-c", (char *) command, NULL };
    int rc = posix_spawn (pid, "/bin/sh", &actions, &attributes, argv, envp);
    posix_spawnattr_destroy (&attributes);
    posix_spawn_file_actions_destroy (&actions);
    return rc;
}

//  Pipes are close-on-exec so the child keeps only what dup2 gave it
static int
s_pipes (int in [2], int out [2], int err [2], bool capture)
{
    in [0] = in [1] = out [0] = out [1] = err [0] = err [1] = -1;
    if (pipe2 (in, O_CLOEXEC))
        return -1;
    if (capture && (pipe2 (out, O_CLOEXEC) || pipe2 (err, O_CLOEXEC)))
        return -1;
    //  A child that reads slowly must not block us: we poll instead
    fcntl (in [1], F_SETFL, O_NONBLOCK);
    return 0;
}

static void
s_close_all (int in [2], int out [2], int err [2])
{
    for (int index = 0; index < 2; index++) {
        s_close (&in [index]);
        s_close (&out [index]);
        s_close (&err [index]);
    }
}

void
chorus_cli_shell_release (chorus_cli_shell_t *result)
{
    zstr_free (&result->out);
    zstr_free (&result->err);
}

//  --------------------------------------------------------------------------
//  A child the caller polls

struct _chorus_cli_child_t {
    pid_t pid;                  //  the child
    int pidfd;                  //  readable once it has exited; -1 where the kernel has none
    int status;                 //  its exit status once reaped, else -1
    int in;                     //  our end of its stdin, -1 once closed
    char *input;                //  bytes still to write to its stdin
    size_t input_size;          //  bytes in input
    size_t written;             //  bytes of input written
    bool lines;                 //  LINES: stdin stays open, stdout comes as lines
    s_sink_t out;               //  its stdout, when captured or LINES
    size_t scanned;             //  LINES: bytes at the start of out known to hold no newline
    s_sink_t err;               //  its stderr, when captured
};

//  Frees a child that was not started, keeping errno
static chorus_cli_child_t *
s_child_abandon (chorus_cli_child_t *self, char *copy, char **envp, int in [2], int out [2],
                 int err [2])
{
    int saved = errno;
    s_close_all (in, out, err);
    free (self);
    free (copy);
    free (envp);
    errno = saved;
    return NULL;
}

chorus_cli_child_t *
chorus_cli_child_new (const char *command, zlist_t *env, const char *input, size_t input_size,
                      int flags)
{
    bool capture = (flags & CHORUS_CLI_CHILD_CAPTURE) != 0;
    bool lines = (flags & CHORUS_CLI_CHILD_LINES) != 0;
    int in [2] = { -1, -1 }, out [2] = { -1, -1 }, err [2] = { -1, -1 };
    chorus_cli_child_t *self = calloc (1, sizeof (chorus_cli_child_t));
    char *copy = malloc (input_size + 1);
    char **envp = s_environment (env);
    if (!self || !copy || !envp) {
        errno = ENOMEM;
        return s_child_abandon (self, copy, envp, in, out, err);
    }
    if (s_pipes (in, out, err, capture))
        return s_child_abandon (self, copy, envp, in, out, err);
    //  A long-lived child answers on stdout (its stderr stays ours), which
    //  we drain without blocking when it has exited
    if (lines && !capture && pipe2 (out, O_CLOEXEC))
        return s_child_abandon (self, copy, envp, in, out, err);
    if (lines)
        fcntl (out [0], F_SETFL, O_NONBLOCK);
    memcpy (copy, input, input_size);
    fflush (stdout);
    fflush (stderr);
    int rc = s_spawn (command, envp, in [0], out [1], err [1], &self->pid);
    free (envp);
    envp = NULL;
    if (rc) {
        errno = rc;
        return s_child_abandon (self, copy, envp, in, out, err);
    }
    s_close (&in [0]);
    s_close (&out [1]);
    s_close (&err [1]);
    self->pidfd = (int) syscall (SYS_pidfd_open, self->pid, 0);
    if (self->pidfd >= 0)
        fcntl (self->pidfd, F_SETFD, FD_CLOEXEC);
    self->status = -1;
    self->in = in [1];
    self->input = copy;
    self->input_size = input_size;
    self->lines = lines;
    if (self->input_size == 0 && !self->lines)
        s_close (&self->in);
    //  Lines are taken as they come, so what is kept is at most one line
    //  too long and the read that showed it
    self->out = (s_sink_t) { .fd = out [0], .max = S_OUT_MAX + (lines? S_CHUNK: 0) };
    self->err = (s_sink_t) { .fd = err [0], .max = S_ERR_MAX };
    return self;
}

//  Writes what its stdin takes; closes it once all is written (unless
//  LINES: more requests follow) or when the child has closed its end
//  (EPIPE: SIGPIPE is ignored by the tool)
static void
s_child_feed (chorus_cli_child_t *self)
{
    ssize_t done = write (self->in, self->input + self->written, self->input_size - self->written);
    if (done < 0 && (errno == EINTR || errno == EAGAIN))
        return;
    if (done < 0) {
        self->written = self->input_size;
        s_close (&self->in);
        //  A long-lived child that no longer reads can take no request
        if (self->lines)
            chorus_cli_child_kill (self);
        return;
    }
    self->written += (size_t) done;
    if (self->written == self->input_size && !self->lines)
        s_close (&self->in);
}

int
chorus_cli_child_write (chorus_cli_child_t *self, const char *data, size_t size)
{
    if (self->in < 0) {
        errno = EPIPE;
        return -1;
    }
    size_t left = self->input_size - self->written;
    char *input = malloc (left + size + 1);
    if (!input)
        return -1;
    memcpy (input, self->input + self->written, left);
    memcpy (input + left, data, size);
    free (self->input);
    self->input = input;
    self->input_size = left + size;
    self->written = 0;
    //  A pipe with room takes a request at once, without a poll first
    if (left == 0)
        s_child_feed (self);
    return 0;
}

int
chorus_cli_child_items (chorus_cli_child_t *self, zmq_pollitem_t *items)
{
    int count = 0;
    if (self->in >= 0 && self->written < self->input_size)
        items [count++] = (zmq_pollitem_t) { NULL, self->in, ZMQ_POLLOUT, 0 };
    if (self->out.fd >= 0)
        items [count++] = (zmq_pollitem_t) { NULL, self->out.fd, ZMQ_POLLIN, 0 };
    if (self->err.fd >= 0)
        items [count++] = (zmq_pollitem_t) { NULL, self->err.fd, ZMQ_POLLIN, 0 };
    if (self->status < 0 && self->pidfd >= 0)
        items [count++] = (zmq_pollitem_t) { NULL, self->pidfd, ZMQ_POLLIN, 0 };
    return count;
}

bool
chorus_cli_child_polled (chorus_cli_child_t *self)
{
    return self->status >= 0 || self->pidfd >= 0;
}

//  Reaps the child if it has exited, without waiting. A LINES child's
//  stdout is drained then, so that a reply it wrote just before it ended
//  is not taken for one it never wrote.
static void
s_child_reap (chorus_cli_child_t *self)
{
    if (self->status >= 0)
        return;
    int status;
    pid_t done = waitpid (self->pid, &status, WNOHANG);
    if (done == self->pid)
        self->status = WIFEXITED (status)? WEXITSTATUS (status): 128 + WTERMSIG (status);
    else
    if (done < 0 && errno != EINTR)
        self->status = 127;
    if (self->status < 0)
        return;
    s_close (&self->pidfd);
    //  What another process holding the pipe writes later is not its answer
    while (self->lines && self->out.fd >= 0 && !self->out.overflow && s_sink_read (&self->out) > 0)
        ;
}

bool
chorus_cli_child_service (chorus_cli_child_t *self, zmq_pollitem_t *items, int count)
{
    for (int index = 0; index < count; index++) {
        if (!items [index].revents)
            continue;
        int fd = items [index].fd;
        if (fd == self->in)
            s_child_feed (self);
        else
        if (fd == self->out.fd)
            s_sink_read (&self->out);
        else
        if (fd == self->err.fd)
            s_sink_read (&self->err);
    }
    s_child_reap (self);
    if (self->lines)
        return self->status >= 0;
    return self->status >= 0 && self->out.fd < 0 && self->err.fd < 0;
}

char *
chorus_cli_child_line (chorus_cli_child_t *self)
{
    if (self->scanned >= self->out.size)
        return NULL;
    char *start = self->out.data + self->scanned;
    char *end = memchr (start, '\n', self->out.size - self->scanned);
    if (!end) {
        self->scanned = self->out.size;
        return NULL;
    }
    size_t size = (size_t) (end - self->out.data);
    char *line = malloc (size + 1);
    if (!line)
        return NULL;
    memcpy (line, self->out.data, size);
    line [size] = 0;
    self->out.size -= size + 1;
    memmove (self->out.data, end + 1, self->out.size);
    self->out.data [self->out.size] = 0;
    self->scanned = 0;
    return line;
}

bool
chorus_cli_child_overflow (chorus_cli_child_t *self)
{
    return self->out.overflow || self->scanned > S_OUT_MAX;
}

void
chorus_cli_child_kill (chorus_cli_child_t *self)
{
    if (self->status < 0)
        kill (self->pid, SIGKILL);
}

void
chorus_cli_child_close (chorus_cli_child_t *self)
{
    s_close (&self->in);
}

void
chorus_cli_child_result (chorus_cli_child_t *self, chorus_cli_shell_t *result)
{
    memset (result, 0, sizeof (*result));
    result->status = self->status;
    result->out = self->out.data;
    result->out_size = self->out.size;
    result->out_overflow = self->out.overflow;
    result->err = self->err.data;
    result->err_size = self->err.size;
    self->out.data = self->err.data = NULL;
    self->out.size = self->err.size = 0;
    self->out.capacity = self->err.capacity = 0;
    self->scanned = 0;
}

pid_t
chorus_cli_child_pid (chorus_cli_child_t *self)
{
    return self->pid;
}

void
chorus_cli_child_destroy (chorus_cli_child_t **self_p)
{
    chorus_cli_child_t *self = *self_p;
    if (!self)
        return;
    s_close (&self->in);
    s_close (&self->out.fd);
    s_close (&self->err.fd);
    //  Closing its stdin asks a long-lived child to end; one that does not
    //  within two seconds is killed, and reaped either way
    for (int tries = 0; self->status < 0 && tries < 200; tries++) {
        s_child_reap (self);
        if (self->status < 0)
            usleep (10 * 1000);
    }
    if (self->status < 0) {
        kill (self->pid, SIGKILL);
        int status;
        while (waitpid (self->pid, &status, 0) < 0 && errno == EINTR)
            ;
    }
    s_close (&self->pidfd);
    free (self->out.data);
    free (self->err.data);
    free (self->input);
    free (self);
    *self_p = NULL;
}

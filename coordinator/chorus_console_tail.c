/*  chorus_console_tail.c — the console's live tail: a ring of the events
    the coordinator saw last, served as Server-Sent Events to each tail on
    its own thread. A tail that reconnects with Last-Event-ID resumes after
    that event, and is told ("event: missed") when the ring no longer holds
    what it missed. Also the trace tree, made from a trace's events.
*/
#define _GNU_SOURCE     //  vasprintf
#include "chorus_console_private.h"
#include "chorus.h"

#include <errno.h>
#include <stdarg.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

//  A tail waits this long for events before it sends a comment, which
//  finds a client that went away
#define S_KEEPALIVE_S 10

typedef struct {
    chorus_console_t *console;      //  whose ring
    char *topic;                    //  prefix of the topics sent, NULL: all
    uint64_t last;                  //  the last event looked at
    char *notice;                   //  said first: why events were missed, or NULL
    bool started;                   //  the first text went
    char *out;                      //  text being sent
    size_t out_size;                //  its size
    size_t out_at;                  //  how much of it went
    chorus__tail_entry_t entry;     //  the event being made into text, a copy
} s_tail_t;

char *
chorus__console_format (const char *format, ...)
{
    va_list args;
    va_start (args, format);
    char *text = NULL;
    if (vasprintf (&text, format, args) < 0)
        text = NULL;
    va_end (args);
    return text;
}

void
chorus_console_event (chorus_console_t *self, const char *fields [6], uint64_t seq,
                      uint64_t time, const void *payload, size_t size)
{
    if (!fields [1])
        return;
    size_t lengths [6], block_size = size;
    for (int i = 0; i < 6; i++) {
        lengths [i] = fields [i]? strlen (fields [i]) + 1: 0;
        block_size += lengths [i];
    }
    chorus__tail_entry_t entry = {(char *) malloc (block_size? block_size: 1), block_size,
                                  {NULL}, seq, time, NULL, size};
    if (!entry.block)
        return;
    char *at = entry.block;
    for (int i = 0; i < 6; i++)
        if (fields [i]) {
            memcpy (at, fields [i], lengths [i]);
            entry.fields [i] = at;
            at += lengths [i];
        }
    if (payload && size) {
        memcpy (at, payload, size);
        entry.payload = at;
    }
    pthread_mutex_lock (&self->lock);
    chorus__tail_entry_t *slot = &self->tail [self->tail_next % CHORUS_CONSOLE_TAIL_MAX];
    char *old = slot->block;
    *slot = entry;
    self->tail_next++;
    pthread_cond_broadcast (&self->tail_news);
    pthread_mutex_unlock (&self->lock);
    free (old);
}

//  Moves an entry's pointers from one block to its copy
static void
s_entry_move (chorus__tail_entry_t *entry, char *block)
{
    for (int i = 0; i < 6; i++)
        if (entry->fields [i])
            entry->fields [i] = block + (entry->fields [i] - entry->block);
    if (entry->payload)
        entry->payload = block + ((const char *) entry->payload - entry->block);
    entry->block = block;
}

//  The SSE text of an event (caller frees), made on the tail's thread
static char *
s_event_text (chorus_console_t *self, uint64_t number, chorus__tail_entry_t *entry)
{
    json_t *payload = NULL;
    char *text = NULL;
    char error [128];
    if (entry->size > 16384)
        payload = json_pack ("{s:s}", "omitted", "a payload of more than 16384 bytes");
    else
    if (entry->payload
    &&  chorus_payload_to_json (entry->payload, entry->size, 0, &text, error, sizeof (error)) == 0)
        payload = json_loads (text, JSON_DECODE_ANY, NULL);
    chorus_payload_free (text);
    const char **fields = entry->fields;
    json_t *event = json_pack ("{s:s?, s:s, s:s?, s:s?, s:s?, s:s?, s:I, s:I, s:o}",
                               "id", fields [0], "topic", fields [1], "service", fields [2],
                               "instance", fields [3], "correlation", fields [4],
                               "causation", fields [5], "seq", (json_int_t) entry->seq,
                               "time", (json_int_t) entry->time,
                               "payload", payload? payload: json_null ());
    char *data = event? json_dumps (event, JSON_COMPACT): NULL;
    json_decref (event);
    char *out = data? chorus__console_format ("id: %" PRIu64 "-%" PRIu64 "\nevent: event\n"
                                              "data: %s\n\n", self->boot, number, data): NULL;
    free (data);
    return out;
}

void
chorus__console_tail_clear (chorus_console_t *self)
{
    for (size_t i = 0; i < CHORUS_CONSOLE_TAIL_MAX; i++) {
        free (self->tail [i].block);
        self->tail [i].block = NULL;
    }
}

//  The next text for the tail (with the lock held): a notice of missed
//  events, or a comment after a quiet while (0); an event, copied into
//  tail->entry (1); -1 when the console stops
static int
s_next_text (s_tail_t *tail)
{
    chorus_console_t *self = tail->console;
    if (!tail->started) {
        tail->started = true;
        tail->out = tail->notice? chorus__console_format ("retry: 1000\n\n%s", tail->notice)
                                : strdup ("retry: 1000\n\n");
        return tail->out? 0: -1;
    }
    while (!self->stopping) {
        uint64_t oldest = self->tail_next > CHORUS_CONSOLE_TAIL_MAX
                        ? self->tail_next - CHORUS_CONSOLE_TAIL_MAX: 1;
        if (tail->last + 1 < oldest) {
            uint64_t missed = oldest - tail->last - 1;
            tail->out = chorus__console_format ("event: missed\ndata: {\"missed\":%" PRIu64
                                                ",\"reason\":\"the tail fell more than %d "
                                                "events behind\"}\n\n", missed,
                                                CHORUS_CONSOLE_TAIL_MAX);
            tail->last = oldest - 1;
            return tail->out? 0: -1;
        }
        if (tail->last + 1 < self->tail_next) {
            tail->last++;
            chorus__tail_entry_t *entry = &self->tail [tail->last % CHORUS_CONSOLE_TAIL_MAX];
            if (tail->topic && strncmp (entry->fields [1], tail->topic, strlen (tail->topic)))
                continue;
            //  A copy, made into text without the lock
            tail->entry = *entry;
            char *block = (char *) malloc (entry->block_size? entry->block_size: 1);
            if (!block)
                return -1;
            memcpy (block, entry->block, entry->block_size);
            s_entry_move (&tail->entry, block);
            return 1;
        }
        struct timespec until;
        clock_gettime (CLOCK_MONOTONIC, &until);
        until.tv_sec += S_KEEPALIVE_S;
        if (pthread_cond_timedwait (&self->tail_news, &self->lock, &until) == ETIMEDOUT) {
            tail->out = strdup (": keepalive\n\n");
            return tail->out? 0: -1;
        }
    }
    return -1;
}

static ssize_t
s_tail_read (void *cls, uint64_t pos, char *buffer, size_t max)
{
    (void) pos;
    s_tail_t *tail = (s_tail_t *) cls;
    if (tail->out_at == tail->out_size) {
        free (tail->out);
        tail->out = NULL;
        pthread_mutex_lock (&tail->console->lock);
        int rc = s_next_text (tail);
        pthread_mutex_unlock (&tail->console->lock);
        if (rc == 1) {
            tail->out = s_event_text (tail->console, tail->last, &tail->entry);
            free (tail->entry.block);
            tail->entry.block = NULL;
        }
        if (rc < 0 || !tail->out)
            return MHD_CONTENT_READER_END_OF_STREAM;
        tail->out_size = strlen (tail->out);
        tail->out_at = 0;
    }
    size_t size = tail->out_size - tail->out_at < max? tail->out_size - tail->out_at: max;
    memcpy (buffer, tail->out + tail->out_at, size);
    tail->out_at += size;
    return (ssize_t) size;
}

static void
s_tail_free (void *cls)
{
    s_tail_t *tail = (s_tail_t *) cls;
    free (tail->topic);
    free (tail->notice);
    free (tail->out);
    free (tail->entry.block);
    free (tail);
}

enum MHD_Result
chorus__console_tail (chorus_console_t *self, struct MHD_Connection *connection,
                      const char *topic, const char *last_id)
{
    s_tail_t *tail = (s_tail_t *) calloc (1, sizeof (*tail));
    if (!tail)
        return MHD_NO;
    tail->console = self;
    tail->topic = topic && *topic? strdup (topic): NULL;
    uint64_t boot = 0, seq = 0;
    char end = 0;
    bool parsed = last_id
               && sscanf (last_id, "%" SCNu64 "-%" SCNu64 "%c", &boot, &seq, &end) == 2;
    pthread_mutex_lock (&self->lock);
    tail->last = self->tail_next - 1;
    if (parsed && boot == self->boot && seq < self->tail_next)
        tail->last = seq;
    else
    if (last_id)
        tail->notice = chorus__console_format (
            "event: missed\ndata: {\"missed\":null,\"reason\":\"%s\"}\n\n",
            parsed && boot != self->boot? "the coordinator restarted since that event"
                                        : "Last-Event-ID is not an event of this console");
    pthread_mutex_unlock (&self->lock);
    struct MHD_Response *response = MHD_create_response_from_callback (
        MHD_SIZE_UNKNOWN, 32 * 1024, s_tail_read, tail, s_tail_free);
    if (!response) {
        s_tail_free (tail);
        return MHD_NO;
    }
    MHD_add_response_header (response, "Content-Type", "text/event-stream");
    MHD_add_response_header (response, "Cache-Control", "no-store");
    enum MHD_Result result = MHD_queue_response (connection, 200, response);
    MHD_destroy_response (response);
    return result;
}

//  --------------------------------------------------------------------------
//  The trace tree

//  Orders the trace's entries by time, then as they came
typedef struct {
    json_t *entry;              //  an event or a command's try
    json_int_t time;            //  its time (a command: when it was sent)
    size_t order;               //  where it came
} s_placed_t;

static int
s_by_time (const void *a, const void *b)
{
    const s_placed_t *x = (const s_placed_t *) a, *y = (const s_placed_t *) b;
    if (x->time != y->time)
        return x->time < y->time? -1: 1;
    return x->order < y->order? -1: x->order > y->order;
}

void
chorus__console_trace_tree (json_t *trace)
{
    //  Events and the commands the coordinator sent, in time order
    json_t *lists [2] = {json_object_get (trace, "events"), json_object_get (trace, "commands")};
    size_t count = json_array_size (lists [0]) + json_array_size (lists [1]);
    s_placed_t *entries = (s_placed_t *) calloc (count? count: 1, sizeof (s_placed_t));
    if (!entries) {
        json_object_set_new (trace, "tree", json_array ());
        return;
    }
    size_t index, at = 0;
    json_t *event;
    for (int list = 0; list < 2; list++)
        json_array_foreach (lists [list], index, event) {
            entries [at].entry = event;
            entries [at].time = json_integer_value (json_object_get (event, "time"));
            entries [at].order = at;
            at++;
        }
    qsort (entries, count, sizeof (s_placed_t), s_by_time);

    json_t *nodes = json_object ();         //  id -> its node in the tree
    for (index = 0; index < count; index++) {
        event = entries [index].entry;
        const char *id = json_string_value (json_object_get (event, "id"));
        if (id && !json_object_get (nodes, id)) {
            json_t *node = json_deep_copy (event);
            json_object_set_new (node, "children", json_array ());
            json_object_set_new (nodes, id, node);
        }
    }
    json_t *roots = json_array ();
    for (index = 0; index < count; index++) {
        event = entries [index].entry;
        const char *id = json_string_value (json_object_get (event, "id"));
        json_t *node = id? json_object_get (nodes, id): NULL;
        if (!node || json_object_get (node, "placed"))
            continue;
        json_object_set_new (node, "placed", json_true ());
        const char *cause = json_string_value (json_object_get (event, "causation"));
        //  Under a cause placed before it only: a tree, whatever the
        //  causations say (they come from the mesh)
        json_t *parent = cause && strcmp (cause, id)? json_object_get (nodes, cause): NULL;
        if (parent && !json_object_get (parent, "placed"))
            parent = NULL;
        json_array_append (parent? json_object_get (parent, "children"): roots, node);
    }
    const char *id;
    json_t *node;
    json_object_foreach (nodes, id, node)
        json_object_del (node, "placed");
    json_object_set_new (trace, "tree", roots);
    json_decref (nodes);
    free (entries);
}

/*  chorus_console_private.h — what the console's files share: the
    console's state, the live tail (chorus_console_tail.c) and the pages
    built into the binary (chorus_console_assets.c, made from
    coordinator/console/ at build time by coordinator/console/embed.sh).
*/
#ifndef CHORUS_CONSOLE_PRIVATE_H_INCLUDED
#define CHORUS_CONSOLE_PRIVATE_H_INCLUDED

#include "chorus_console.h"

#include <microhttpd.h>
#include <pthread.h>

//  Events kept for the live tail: a tail that reconnects within them
//  misses nothing
#define CHORUS_CONSOLE_TAIL_MAX 4096

//  An event of the ring as it came: made into JSON only when a tail sends
//  it, on the tail's thread, so that the coordinator's thread only copies
typedef struct {
    char *block;                    //  the fields and the payload, one allocation, NULL: empty
    size_t block_size;              //  its size
    const char *fields [6];         //  id, topic, service, instance, correlation,
                                    //  causation: in block, NULL: none
    uint64_t seq;                   //  the publisher's sequence number
    uint64_t time;                  //  when it was published (ms)
    const void *payload;            //  in block, NULL: none
    size_t size;                    //  the payload's size
} chorus__tail_entry_t;

struct _chorus_console_t {
    struct MHD_Daemon *daemon;      //  serves on its own threads
    char address [96];              //  HOST:PORT served
    char *token;                    //  bearer token the API needs, NULL: none
    int wake [2];                   //  pipe: readable while calls wait
    pthread_mutex_t lock;           //  guards what follows
    pthread_cond_t answered;        //  a call was answered, or stopping
    chorus_console_call_t *head_call;   //  calls waiting, oldest first
    chorus_console_call_t *tail_call;   //  the newest
    bool stopping;                  //  destroy began
    pthread_cond_t tail_news;       //  an event came, or stopping
    chorus__tail_entry_t tail [CHORUS_CONSOLE_TAIL_MAX];   //  ring, by sequence number
    uint64_t tail_next;             //  sequence number of the next event (from 1)
    uint64_t boot;                  //  when the console started: ids of other runs differ
};

//  A page of the console
typedef struct {
    const char *path;               //  "/index.html"
    const char *type;               //  its Content-Type
    const unsigned char *data;      //  its bytes
    size_t size;                    //  how many
} chorus_console_asset_t;

//  Every page, then one with a NULL path
extern const chorus_console_asset_t chorus_console_assets [];

//  Answers GET /api/tail: Server-Sent Events of the topics that start with
//  topic (NULL: all), after the event last_id names (NULL: from now on)
enum MHD_Result
    chorus__console_tail (chorus_console_t *self, struct MHD_Connection *connection,
                          const char *topic, const char *last_id);
//  Frees the ring
void
    chorus__console_tail_clear (chorus_console_t *self);
//  printf into a new string (caller frees), NULL when out of memory
char *
    chorus__console_format (const char *format, ...) __attribute__ ((format (printf, 1, 2)));
//  Adds "tree" to a trace answer: its events and the commands the
//  coordinator sent, in time order, each nested under its cause
void
    chorus__console_trace_tree (json_t *trace);

#endif

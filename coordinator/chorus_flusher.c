/*  chorus_flusher.c — the node store's flush, in a thread of its own (see
    the header). The caller's thread only counts requests and reads what
    the thread did; the fsync itself waits here.
*/
#include "chorus_flusher.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

//  Flushes are at least this far apart: each is a flush of the disk that
//  the journal's commits, which flows wait for, would queue behind, while
//  nothing waits for this one but the journal's forgetting of events
#define S_INTERVAL_MS 50

struct _chorus_flusher_t {
    chorus_node_t *node;        //  whose store is flushed
    pthread_t thread;           //  the flusher
    bool started;               //  the thread runs
    pthread_mutex_t lock;       //  guards the fields below
    pthread_cond_t wake;        //  a request, or stopping
    uint64_t requested;         //  the last ticket asked for
    uint64_t flushed;           //  the last ticket flushed
    uint64_t failed;            //  the last ticket whose flush failed
    uint64_t served;            //  the last ticket a flush was begun for
    int code;                   //  what it failed with
    bool stopping;              //  destroy was called
    int pipe [2];               //  a byte in it: news for the caller
    bool signalled;             //  the byte is there, not yet taken
};

//  Tells the caller there is news; called with the lock held
static void
s_notify (chorus_flusher_t *self)
{
    if (!self->signalled) {
        char byte = 1;
        if (write (self->pipe [1], &byte, 1) == 1)
            self->signalled = true;
    }
}

static void *
s_run (void *arg)
{
    chorus_flusher_t *self = (chorus_flusher_t *) arg;
    pthread_mutex_lock (&self->lock);
    struct timespec next = {0, 0};
    while (true) {
        while (!self->stopping && self->requested <= self->served)
            pthread_cond_wait (&self->wake, &self->lock);
        //  Requests made meanwhile wait for the next flush
        while (!self->stopping
           &&  pthread_cond_timedwait (&self->wake, &self->lock, &next) != ETIMEDOUT)
            ;
        if (self->stopping)
            break;
        //  Every request made so far is served by this one flush
        uint64_t ticket = self->served = self->requested;
        pthread_mutex_unlock (&self->lock);
        int code = chorus_node_flush (self->node);
        clock_gettime (CLOCK_MONOTONIC, &next);
        next.tv_nsec += S_INTERVAL_MS * 1000000l;
        next.tv_sec += next.tv_nsec / 1000000000l;
        next.tv_nsec %= 1000000000l;
        pthread_mutex_lock (&self->lock);
        if (code == 0)
            self->flushed = ticket;
        else {
            self->failed = ticket;
            self->code = code;
        }
        s_notify (self);
    }
    pthread_mutex_unlock (&self->lock);
    return NULL;
}

chorus_flusher_t *
chorus_flusher_new (chorus_node_t *node)
{
    chorus_flusher_t *self = (chorus_flusher_t *) calloc (1, sizeof (chorus_flusher_t));
    if (!self)
        return NULL;
    self->node = node;
    pthread_mutex_init (&self->lock, NULL);
    pthread_condattr_t attr;
    pthread_condattr_init (&attr);
    pthread_condattr_setclock (&attr, CLOCK_MONOTONIC);
    pthread_cond_init (&self->wake, &attr);
    pthread_condattr_destroy (&attr);
    self->pipe [0] = self->pipe [1] = -1;
    if (pipe (self->pipe)
    ||  fcntl (self->pipe [0], F_SETFL, O_NONBLOCK)
    ||  fcntl (self->pipe [0], F_SETFD, FD_CLOEXEC)
    ||  fcntl (self->pipe [1], F_SETFD, FD_CLOEXEC)
    ||  pthread_create (&self->thread, NULL, s_run, self)) {
        chorus_flusher_destroy (&self);
        return NULL;
    }
    self->started = true;
    return self;
}

void
chorus_flusher_destroy (chorus_flusher_t **self_p)
{
    chorus_flusher_t *self = *self_p;
    if (!self)
        return;
    if (self->started) {
        pthread_mutex_lock (&self->lock);
        self->stopping = true;
        pthread_cond_signal (&self->wake);
        pthread_mutex_unlock (&self->lock);
        pthread_join (self->thread, NULL);
    }
    for (int i = 0; i < 2; i++)
        if (self->pipe [i] >= 0)
            close (self->pipe [i]);
    pthread_cond_destroy (&self->wake);
    pthread_mutex_destroy (&self->lock);
    free (self);
    *self_p = NULL;
}

uint64_t
chorus_flusher_request (chorus_flusher_t *self)
{
    pthread_mutex_lock (&self->lock);
    uint64_t ticket = ++self->requested;
    pthread_cond_signal (&self->wake);
    pthread_mutex_unlock (&self->lock);
    return ticket;
}

//  Takes the byte that said there was news
static void
s_take_news (chorus_flusher_t *self)
{
    if (self->signalled) {
        char byte;
        while (read (self->pipe [0], &byte, 1) == 1)
            ;
        self->signalled = false;
    }
}

uint64_t
chorus_flusher_flushed (chorus_flusher_t *self)
{
    pthread_mutex_lock (&self->lock);
    s_take_news (self);
    uint64_t flushed = self->flushed;
    pthread_mutex_unlock (&self->lock);
    return flushed;
}

uint64_t
chorus_flusher_failed (chorus_flusher_t *self, int *code)
{
    pthread_mutex_lock (&self->lock);
    s_take_news (self);
    uint64_t failed = self->failed;
    *code = self->code;
    pthread_mutex_unlock (&self->lock);
    return failed;
}

int
chorus_flusher_fd (chorus_flusher_t *self)
{
    return self->pipe [0];
}

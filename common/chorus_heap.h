/*  chorus_heap.h — a binary min-heap of intrusive items ordered by when they
    are due, ties in the order they were set: the node's timers and the
    coordinator's flow timers. An item lives inside its owner's struct;
    setting it again moves it, cancelling takes it out, both O(log n).
    Header only, so that the library and the coordinator share one source
    without exporting it.
*/
#ifndef CHORUS_HEAP_H_INCLUDED
#define CHORUS_HEAP_H_INCLUDED

#include <assert.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

//  One item, a field of whatever it times; zero it before first use
typedef struct {
    uint64_t due;               //  when it is due (ms)
    uint64_t seq;               //  when it was set, among items due at once
    size_t index;               //  its place in the heap + 1; 0 when not set
    void *arg;                  //  its owner, for whoever takes it out
} chorus_heap_item_t;

typedef struct {
    chorus_heap_item_t **items; //  earliest first at [0]
    size_t size;                //  how many are set
    size_t max;                 //  how many fit
    uint64_t seq;               //  seq of the next item set
} chorus_heap_t;

static inline bool
chorus_heap_before (const chorus_heap_item_t *a, const chorus_heap_item_t *b)
{
    return a->due < b->due || (a->due == b->due && a->seq < b->seq);
}

static inline void
chorus_heap_place_ (chorus_heap_t *self, chorus_heap_item_t *item, size_t at)
{
    self->items [at] = item;
    item->index = at + 1;
}

static inline void
chorus_heap_up_ (chorus_heap_t *self, size_t at)
{
    chorus_heap_item_t *item = self->items [at];
    while (at > 0) {
        size_t parent = (at - 1) / 2;
        if (!chorus_heap_before (item, self->items [parent]))
            break;
        chorus_heap_place_ (self, self->items [parent], at);
        at = parent;
    }
    chorus_heap_place_ (self, item, at);
}

static inline void
chorus_heap_down_ (chorus_heap_t *self, size_t at)
{
    chorus_heap_item_t *item = self->items [at];
    while (true) {
        size_t child = 2 * at + 1;
        if (child >= self->size)
            break;
        if (child + 1 < self->size
        &&  chorus_heap_before (self->items [child + 1], self->items [child]))
            child++;
        if (!chorus_heap_before (self->items [child], item))
            break;
        chorus_heap_place_ (self, self->items [child], at);
        at = child;
    }
    chorus_heap_place_ (self, item, at);
}

//  Sets (or moves) an item to be due at due, for its owner arg
static inline void
chorus_heap_set (chorus_heap_t *self, chorus_heap_item_t *item, uint64_t due, void *arg)
{
    item->arg = arg;
    item->due = due;
    item->seq = self->seq++;
    if (item->index) {
        chorus_heap_up_ (self, item->index - 1);
        chorus_heap_down_ (self, item->index - 1);
        return;
    }
    if (self->size == self->max) {
        self->max = self->max? self->max * 2: 64;
        self->items = (chorus_heap_item_t **) realloc (self->items,
                                                       self->max * sizeof (chorus_heap_item_t *));
        assert (self->items);
    }
    chorus_heap_place_ (self, item, self->size++);
    chorus_heap_up_ (self, self->size - 1);
}

//  Takes an item out if it is set
static inline void
chorus_heap_cancel (chorus_heap_t *self, chorus_heap_item_t *item)
{
    if (!item->index)
        return;
    size_t at = item->index - 1;
    assert (at < self->size && self->items [at] == item);
    item->index = 0;
    chorus_heap_item_t *last = self->items [--self->size];
    if (last == item)
        return;
    chorus_heap_place_ (self, last, at);
    chorus_heap_up_ (self, at);
    chorus_heap_down_ (self, last->index - 1);
}

//  The earliest item, NULL if none is set
static inline chorus_heap_item_t *
chorus_heap_first (chorus_heap_t *self)
{
    return self->size? self->items [0]: NULL;
}

//  The earliest item due at now or before, taken out; NULL if none
static inline chorus_heap_item_t *
chorus_heap_pop (chorus_heap_t *self, uint64_t now)
{
    chorus_heap_item_t *item = chorus_heap_first (self);
    if (!item || item->due > now)
        return NULL;
    chorus_heap_cancel (self, item);
    return item;
}

//  Takes every item out (their owners keep them) and frees the heap's array
static inline void
chorus_heap_clear (chorus_heap_t *self)
{
    for (size_t i = 0; i < self->size; i++)
        self->items [i]->index = 0;
    free (self->items);
    self->items = NULL;
    self->size = self->max = 0;
}

#endif

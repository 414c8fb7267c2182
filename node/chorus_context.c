/*  chorus_context.c — the services the engine's classes share: warnings
    at a bounded rate, answers and refusals to peers, and the hand-over of
    work to the application's thread.
*/
#include "chorus_context.h"

#include <stdarg.h>

const char *chorus__counter_names [C_COUNTERS] = {
    "malformed", "unknown_peer", "published", "delivered", "handled", "duplicates",
    "redelivered", "commands_sent", "commands_handled", "replies", "timeouts", "fetches",
    "truncated", "observed", "expired_commands", "fetched", "forged", "refused",
    "errors_sent", "errors_received", "connections_refused", "forbidden", "unauthorised",
    "handshakes_failed", "revoked", "hellos", "stalls", "datagrams",
    "idle_closes",
};

#define S_WARN_MS 10000         //  one warning of a kind at most this often

void
chorus__context_init (chorus__context_t *self, chorus__config_t *config, chorus_store_t *store)
{
    memset (self, 0, sizeof (*self));
    self->config = config;
    self->store = store;
}

void
chorus__context_fini (chorus__context_t *self)
{
    chorus__batch_discard (&self->handover);
}

void
chorus__context_log (chorus__context_t *self, const char *format, ...)
{
    if (!self->config->verbose)
        return;
    va_list args;
    va_start (args, format);
    char *text = zsys_vprintf (format, args);
    va_end (args);
    chorus__log (CHORUS_LOG_DEBUG, "chorus %s/%.8s: %s", self->config->service,
                 *self->instance? self->instance: "-", text);
    free (text);
}

void
chorus__context_warn (chorus__context_t *self, chorus__warning_t kind, const char *format, ...)
{
    uint64_t now = chorus__mono ();
    if (self->warned [kind] && now - self->warned [kind] < S_WARN_MS) {
        self->unwarned [kind]++;
        return;
    }
    va_list args;
    va_start (args, format);
    char *text = zsys_vprintf (format, args);
    va_end (args);
    const char *instance = *self->instance? self->instance: "-";
    if (self->unwarned [kind])
        chorus__log (CHORUS_LOG_WARNING, "chorus %s/%.8s: %s (and %" PRIu64 " more like it)",
                     self->config->service, instance, text, self->unwarned [kind]);
    else
        chorus__log (CHORUS_LOG_WARNING, "chorus %s/%.8s: %s", self->config->service, instance,
                     text);
    free (text);
    self->warned [kind] = now;
    self->unwarned [kind] = 0;
}

chorus__peer_t *
chorus__context_peer (chorus__context_t *self, const char *instance)
{
    return instance && self->peers? (chorus__peer_t *) zhashx_lookup (self->peers, instance)
                                  : NULL;
}

chorus_msg_t *
chorus__context_msg (chorus__context_t *self, int type)
{
    chorus_msg_t *msg = chorus_msg_new (type);
    char id [33];
    chorus__new_id (id);
    chorus_msg_set_id (msg, id);
    return msg;
}

void
chorus__context_error (chorus__context_t *self, chorus__peer_t *peer, chorus_msg_t *request,
                       const char *code, const char *message)
{
    self->counters [C_ERRORS_SENT]++;
    chorus_msg_t *error = chorus__context_msg (self, CHORUS_MSG_ERROR);
    chorus_msg_set_request (error, chorus_msg_id (request));
    chorus_msg_set_code (error, code);
    chorus_msg_set_message (error, message);
    //  As any answer: kept while the connection is not up yet (a peer we
    //  have just met, or one whose connection we closed idle), rather than
    //  lost, which would leave the peer to wait for its timeout
    chorus__peer_answer (peer, error);
    chorus_msg_destroy (&error);
}

void
chorus__context_forged (chorus__context_t *self, chorus__peer_t *peer, chorus_msg_t *msg,
                        const char *why)
{
    self->counters [C_FORGED]++;
    const char *instance = chorus_msg_instance (msg);
    chorus__context_warn (self, W_FORGED, "dropped %s %.32s from peer %s/%s at %s (from %s): "
                          "%s%s%s", chorus_msg_command (msg), chorus_msg_id (msg),
                          peer->service, peer->instance, peer->endpoint,
                          *peer->address? peer->address: "?", why, instance? ", names ": "",
                          instance? instance: "");
}

void
chorus__context_forbidden (chorus__context_t *self, chorus__peer_t *peer, chorus_msg_t *msg,
                           const char *what)
{
    self->counters [C_FORBIDDEN]++;
    char why [512];
    if (chorus_msg_type (msg) == CHORUS_MSG_COMMAND)
        snprintf (why, sizeof (why), "certificate '%s' %s %s.%s", peer->grant->name, what,
                  chorus_msg_service (msg), chorus_msg_name (msg));
    else
        snprintf (why, sizeof (why), "certificate '%s' %s '%s'", peer->grant->name, what,
                  chorus_msg_topic (msg));
    chorus__context_warn (self, W_FORBIDDEN, "refused %s %.32s from %s/%.8s: %s",
                          chorus_msg_command (msg), chorus_msg_id (msg), peer->service,
                          peer->instance, why);
    chorus__context_error (self, peer, msg, "forbidden", why);
}

void
chorus__context_hand (chorus__context_t *self, char kind, chorus_msg_t *msg, const char *text)
{
    chorus__batch_add (&self->handover, kind, 0, msg, NULL, text);
}

//  Run inline, work goes to the application's queue as the pipe would
//  carry it, without a signal between threads: what was sent is taken off
//  the application's end at once
static void
s_queue_sent (chorus__context_t *self)
{
    zmsg_t *msg;
    while ((msg = chorus__recv_ready (self->config->inline_app)))
        zlist_append (self->config->inline_work, msg);
}

void
chorus__context_flush (chorus__context_t *self)
{
    if (self->config->inline_work) {
        zmsg_t *msg = chorus__batch_take (&self->handover);
        if (msg)
            zlist_append (self->config->inline_work, msg);
    }
    else
    if (self->work)
        chorus__batch_send (&self->handover, self->work);
}

int
chorus__context_work (chorus__context_t *self, const char *picture, ...)
{
    chorus__context_flush (self);   //  work reaches the application in order
    va_list args;
    va_start (args, picture);
    int rc = zsock_vsend (self->work, picture, args);
    va_end (args);
    if (self->config->inline_work)
        s_queue_sent (self);
    return rc;
}

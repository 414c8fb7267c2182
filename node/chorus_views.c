/*  chorus_views.c — what a handler sees of the event, command or reply it
    is given: read-only views over the decoded message, valid until the
    handler returns.
*/
#include "chorus_private.h"

const char *chorus_event_topic (chorus_event_t *self) { return chorus_msg_topic (self->msg); }
const char *chorus_event_key (chorus_event_t *self) { return chorus_msg_key (self->msg); }
const void *chorus_event_payload (chorus_event_t *self) { return chorus_msg_payload (self->msg); }
size_t chorus_event_size (chorus_event_t *self) { return chorus_msg_payload_size (self->msg); }
const char *chorus_event_id (chorus_event_t *self) { return chorus_msg_id (self->msg); }
const char *chorus_event_correlation (chorus_event_t *self)
{
    return chorus_msg_correlation (self->msg);
}
const char *chorus_event_causation (chorus_event_t *self) { return chorus_msg_causation (self->msg); }
const char *chorus_event_service (chorus_event_t *self) { return chorus_msg_service (self->msg); }
const char *chorus_event_instance (chorus_event_t *self) { return chorus_msg_instance (self->msg); }
uint64_t chorus_event_seq (chorus_event_t *self) { return chorus_msg_seq (self->msg); }
uint64_t chorus_event_timestamp (chorus_event_t *self) { return chorus_msg_timestamp (self->msg); }
uint64_t chorus_event_attempt (chorus_event_t *self) { return chorus_msg_attempt (self->msg); }
const char *chorus_event_header (chorus_event_t *self, const char *name)
{
    return chorus_msg_header (self->msg, name);
}

const char *chorus_command_name (chorus_command_t *self) { return chorus_msg_name (self->msg); }
const void *chorus_command_payload (chorus_command_t *self)
{
    return chorus_msg_payload (self->msg);
}
size_t chorus_command_size (chorus_command_t *self) { return chorus_msg_payload_size (self->msg); }
const char *chorus_command_id (chorus_command_t *self) { return chorus_msg_id (self->msg); }
const char *chorus_command_idempotency (chorus_command_t *self)
{
    const char *key = chorus_msg_idempotency (self->msg);
    return key? key: chorus_msg_id (self->msg);
}
const char *chorus_command_correlation (chorus_command_t *self)
{
    return chorus_msg_correlation (self->msg);
}
const char *chorus_command_causation (chorus_command_t *self)
{
    return chorus_msg_causation (self->msg);
}
const char *chorus_command_sender (chorus_command_t *self) { return self->sender; }
uint64_t chorus_command_deadline (chorus_command_t *self) { return chorus_msg_deadline (self->msg); }
//  The sender's try (protocol `try`), 1 when the COMMAND leaves it out
uint64_t
chorus_command_attempt (chorus_command_t *self)
{
    uint64_t attempt = chorus_msg_try (self->msg);
    return attempt? attempt: 1;
}

int
chorus_reply_set_payload (chorus_reply_t *self, const void *data, size_t size)
{
    if (!self->msg)
        return chorus__failf (CHORUS_ESTATE, "reply_set_payload: a reply reporting a local "
                              "failure has no payload");
    if (size > CHORUS_MSG_MAX_PAYLOAD) {
        //  Never an empty success: the asker learns why there is no payload
        char message [128];
        snprintf (message, sizeof (message), "a reply payload of %zu bytes is over the limit "
                  "of %d bytes (CHORUS_PAYLOAD_MAX)", size, CHORUS_MSG_MAX_PAYLOAD);
        chorus_reply_set_error (self, "too-big", message, false);
        return chorus__failf (CHORUS_ETOOBIG, "reply_set_payload: %s", message);
    }
    chorus_msg_set_payload (self->msg, data? data: "", size);
    return 0;
}

void
chorus_reply_set_error (chorus_reply_t *self, const char *code, const char *message,
                        bool retryable)
{
    if (!self->msg)
        return;
    char safe_code [65];
    snprintf (safe_code, sizeof (safe_code), "%s", code && *code? code: "error");
    char *safe_message = message? strndup (message, 4096): NULL;
    chorus_msg_set_status (self->msg, CHORUS_REPLY_ERROR);
    chorus_msg_set_code (self->msg, safe_code);
    chorus_msg_set_message (self->msg, safe_message);
    chorus_msg_set_retryable (self->msg, retryable);
    free (safe_message);
    self->status = CHORUS_EREMOTE;
}

int chorus_reply_status (chorus_reply_t *self) { return self->status; }

const void *
chorus_reply_payload (chorus_reply_t *self)
{
    return self->msg? chorus_msg_payload (self->msg): NULL;
}

size_t
chorus_reply_size (chorus_reply_t *self)
{
    return self->msg? chorus_msg_payload_size (self->msg): 0;
}

const char *
chorus_reply_code (chorus_reply_t *self)
{
    return self->msg? chorus_msg_code (self->msg): self->local_code;
}

const char *
chorus_reply_message (chorus_reply_t *self)
{
    return self->msg? chorus_msg_message (self->msg): self->local_message;
}

bool
chorus_reply_retryable (chorus_reply_t *self)
{
    //  A timeout may well succeed later
    return self->msg? chorus_msg_retryable (self->msg): true;
}

const char *chorus_reply_command_id (chorus_reply_t *self) { return self->command_id; }

/*  installed_consumer.c — a program outside the tree, built only with what
    `pkg-config --cflags --libs libchorus` gives, against an installed copy.
    It uses chorus.h alone (no czmq) and runs two nodes in a poll() loop of
    its own, through chorus_node_fd: one answers a command the other sends.
*/
#include <chorus.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>

//  Answers {"greeting": TEXT} with {"echo": TEXT}, payloads read and built
//  with the library's fields and builder
static void
s_on_echo (chorus_node_t *node, chorus_command_t *command, chorus_reply_t *reply, void *arg)
{
    chorus_fields_t *fields = chorus_fields_new (chorus_command_payload (command),
                                                 chorus_command_size (command));
    char greeting [32];
    if (!fields || chorus_fields_text (fields, "greeting", greeting, sizeof (greeting))) {
        chorus_reply_set_error (reply, "bad-request", chorus_node_error (NULL), false);
        chorus_fields_destroy (&fields);
        return;
    }
    chorus_fields_destroy (&fields);
    chorus_builder_t *builder = chorus_builder_new ();
    chorus_builder_map (builder, 1);
    chorus_builder_str (builder, "echo");
    chorus_builder_str (builder, greeting);
    const void *data;
    size_t size;
    if (chorus_builder_payload (builder, &data, &size) == 0)
        chorus_reply_set_payload (reply, data, size);
    chorus_builder_destroy (&builder);
}

static void
s_on_reply (chorus_node_t *node, chorus_reply_t *reply, void *arg)
{
    chorus_fields_t *fields = chorus_fields_new (chorus_reply_payload (reply),
                                                 chorus_reply_size (reply));
    char echo [32];
    *(int *) arg = chorus_reply_status (reply) == 0 && fields
                 && chorus_fields_text (fields, "echo", echo, sizeof (echo)) == 0
                 && strcmp (echo, "hello") == 0? 1: -1;
    chorus_fields_destroy (&fields);
}

int
main (void)
{
    int major, minor, patch;
    int version = chorus_version (&major, &minor, &patch);
    if (version != CHORUS_VERSION || strcmp (chorus_strerror (CHORUS_ETIMEDOUT),
                                             "deadline passed") != 0)
        return 1;
    //  A payload from JSON and back, with nothing but chorus.h
    void *data = NULL;
    size_t size = 0;
    char error [128];
    if (chorus_payload_from_json ("{\"n\":1}", 7, 0, &data, &size, error, sizeof (error))
        || size != 4)
        return 1;
    char *json = NULL;
    int rc = chorus_payload_to_json (data, size, 0, &json, error, sizeof (error));
    chorus_payload_free (data);
    if (rc || strcmp (json, "{\"n\":1}") != 0)
        return 1;
    chorus_payload_free (json);
    if (chorus_payload_from_json ("{", 1, 0, &data, &size, error, sizeof (error))
        != CHORUS_EINVAL)
        return 1;
    chorus_node_t *echo = chorus_node_new ("echo");
    chorus_node_handle (echo, "echo", s_on_echo, NULL);
    if (chorus_node_fd (echo) != CHORUS_ESTATE || chorus_node_start (echo) < 0)
        return 2;
    chorus_node_t *caller = chorus_node_new ("caller");
    chorus_node_add_seed (caller, chorus_node_endpoint (echo));
    if (chorus_node_start (caller) < 0)
        return 3;
    int answered = 0;
    //  {"greeting": "hello"}, from JSON this time
    if (chorus_payload_from_json ("{\"greeting\":\"hello\"}", 20, 0, &data, &size, error,
                                  sizeof (error)))
        return 3;
    chorus_node_send (caller, "echo", "echo", data, size, 10000, s_on_reply, &answered);
    chorus_payload_free (data);
    struct pollfd fds [2] = {{chorus_node_fd (echo), POLLIN, 0},
                             {chorus_node_fd (caller), POLLIN, 0}};
    //  Edge-triggered: dispatch before each wait
    for (int turns = 0; turns < 2000 && !answered; turns++) {
        chorus_node_dispatch (echo);
        chorus_node_dispatch (caller);
        if (!answered)
            poll (fds, 2, 10);
    }
    chorus_node_destroy (&caller);
    chorus_node_destroy (&echo);
    if (answered != 1)
        return 4;
    printf ("libchorus %d.%d.%d, payloads as JSON, built and read, and a command answered in a poll() loop\n", major, minor, patch);
    return 0;
}

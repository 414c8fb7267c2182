/*  bench_rabbit.c — the RabbitMQ baseline of scripts/bench's durable
    publish figures: persistent messages into a durable queue with
    publisher confirms, counted when the broker has confirmed them (that
    is, stored them on disk). Talks to a broker scripts/bench started.
    Usage: bench_rabbit --port P [--messages N] [--window W] [--size B] [--json FILE]
    Prints "confirmed_per_second R" on stdout.
*/
#include "bench_json.h"

#include <amqp.h>
#include <amqp_tcp_socket.h>

#include <getopt.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#define S_CHANNEL 1

static int64_t
s_now_us (void)
{
    struct timespec now;
    clock_gettime (CLOCK_MONOTONIC, &now);
    return (int64_t) now.tv_sec * 1000000 + now.tv_nsec / 1000;
}

//  An RPC reply as a message; NULL when it is a success
static const char *
s_rpc_problem (amqp_rpc_reply_t reply)
{
    static char text [256];
    switch (reply.reply_type) {
        case AMQP_RESPONSE_NORMAL:
            return NULL;
        case AMQP_RESPONSE_NONE:
            return "no reply";
        case AMQP_RESPONSE_LIBRARY_EXCEPTION:
            return amqp_error_string2 (reply.library_error);
        case AMQP_RESPONSE_SERVER_EXCEPTION:
            if (reply.reply.id == AMQP_CONNECTION_CLOSE_METHOD) {
                amqp_connection_close_t *close = (amqp_connection_close_t *) reply.reply.decoded;
                snprintf (text, sizeof (text), "connection closed: %u %.*s", close->reply_code,
                          (int) close->reply_text.len, (char *) close->reply_text.bytes);
            }
            else
            if (reply.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
                amqp_channel_close_t *close = (amqp_channel_close_t *) reply.reply.decoded;
                snprintf (text, sizeof (text), "channel closed: %u %.*s", close->reply_code,
                          (int) close->reply_text.len, (char *) close->reply_text.bytes);
            }
            else
                snprintf (text, sizeof (text), "server exception, method %08x", reply.reply.id);
            return text;
    }
    return "unknown reply";
}

//  Connect and log in, retrying until deadline: the broker opens its
//  listener before it has finished booting
static amqp_connection_state_t
s_connect (int port, int64_t deadline)
{
    while (true) {
        amqp_connection_state_t conn = amqp_new_connection ();
        amqp_socket_t *socket = amqp_tcp_socket_new (conn);
        const char *problem = NULL;
        if (!socket)
            problem = "cannot create a socket";
        else
        if (amqp_socket_open (socket, "127.0.0.1", port) != AMQP_STATUS_OK)
            problem = "cannot connect";
        else
            problem = s_rpc_problem (amqp_login (conn, "/", 0, 131072, 0,
                                                 AMQP_SASL_METHOD_PLAIN, "guest", "guest"));
        if (!problem)
            return conn;
        amqp_destroy_connection (conn);
        if (s_now_us () >= deadline) {
            fprintf (stderr, "bench_rabbit: 127.0.0.1:%d: %s\n", port, problem);
            return NULL;
        }
        struct timespec pause = { 0, 100 * 1000000 };
        nanosleep (&pause, NULL);
    }
}

//  What the broker has confirmed so far. Tags run 1..count; an ack may
//  cover every tag up to its own (multiple) or just its own.
typedef struct {
    bool *acked;                //  acked [tag], for tags 1..count
    uint64_t lowest;            //  lowest tag not yet confirmed
    uint64_t confirmed;         //  how many are confirmed
    uint64_t nacked;            //  how many the broker refused
} s_confirms_t;

static void
s_confirm (s_confirms_t *self, uint64_t tag, bool multiple, bool nack)
{
    uint64_t from = multiple? self->lowest: tag;
    for (uint64_t each = from; each <= tag; each++)
        if (!self->acked [each]) {
            self->acked [each] = true;
            self->confirmed++;
            if (nack)
                self->nacked++;
        }
    while (self->acked [self->lowest])
        self->lowest++;
}

//  Read one frame (waiting up to timeout_us; -1 forever) and take the
//  confirms it carries. Returns 1 after a frame, 0 when none came in
//  time, or -1 on failure.
static int
s_read_confirms (amqp_connection_state_t conn, s_confirms_t *confirms, int64_t timeout_us)
{
    amqp_frame_t frame;
    int rc;
    if (timeout_us < 0)
        rc = amqp_simple_wait_frame (conn, &frame);
    else {
        struct timeval timeout = { timeout_us / 1000000, timeout_us % 1000000 };
        rc = amqp_simple_wait_frame_noblock (conn, &frame, &timeout);
    }
    if (rc == AMQP_STATUS_TIMEOUT)
        return 0;
    if (rc != AMQP_STATUS_OK) {
        fprintf (stderr, "bench_rabbit: waiting for confirms: %s\n", amqp_error_string2 (rc));
        return -1;
    }
    if (frame.frame_type != AMQP_FRAME_METHOD)
        return 1;
    if (frame.payload.method.id == AMQP_BASIC_ACK_METHOD) {
        amqp_basic_ack_t *ack = (amqp_basic_ack_t *) frame.payload.method.decoded;
        s_confirm (confirms, ack->delivery_tag, ack->multiple, false);
    }
    else
    if (frame.payload.method.id == AMQP_BASIC_NACK_METHOD) {
        amqp_basic_nack_t *nack = (amqp_basic_nack_t *) frame.payload.method.decoded;
        s_confirm (confirms, nack->delivery_tag, nack->multiple, true);
    }
    else
    if (frame.payload.method.id == AMQP_CHANNEL_CLOSE_METHOD
        || frame.payload.method.id == AMQP_CONNECTION_CLOSE_METHOD) {
        fprintf (stderr, "bench_rabbit: the broker closed the %s\n",
                 frame.payload.method.id == AMQP_CHANNEL_CLOSE_METHOD? "channel": "connection");
        return -1;
    }
    amqp_maybe_release_buffers (conn);
    return 1;
}

int
main (int argc, char **argv)
{
    int port = 0, messages = 20000, window = 1000, size = 100;
    const char *json_path = NULL;
    static struct option options [] = {
        {"port", required_argument, 0, 'p'}, {"messages", required_argument, 0, 'm'},
        {"window", required_argument, 0, 'w'}, {"size", required_argument, 0, 's'},
        {"json", required_argument, 0, 'j'}, {0, 0, 0, 0}};
    int option;
    while ((option = getopt_long (argc, argv, "", options, NULL)) != -1) {
        switch (option) {
            case 'p': port = atoi (optarg); break;
            case 'm': messages = atoi (optarg); break;
            case 'w': window = atoi (optarg); break;
            case 's': size = atoi (optarg); break;
            case 'j': json_path = optarg; break;
            default: return 2;
        }
    }
    if (port <= 0 || messages <= 0 || window <= 0 || size < 0) {
        fprintf (stderr, "usage: bench_rabbit --port P [--messages N] [--window W] [--size B] "
                 "[--json FILE]\n");
        return 2;
    }
    amqp_connection_state_t conn = s_connect (port, s_now_us () + 30 * 1000000LL);
    if (!conn)
        return 1;
    amqp_channel_open (conn, S_CHANNEL);
    const char *problem = s_rpc_problem (amqp_get_rpc_reply (conn));
    //  A queue of its own per run, so that one run's backlog is not another's
    char queue [64];
    snprintf (queue, sizeof (queue), "bench-durable-w%d-%d", window, (int) (s_now_us () % 100000));
    if (!problem) {
        amqp_queue_declare (conn, S_CHANNEL, amqp_cstring_bytes (queue), 0, 1, 0, 0,
                            amqp_empty_table);
        problem = s_rpc_problem (amqp_get_rpc_reply (conn));
    }
    if (!problem) {
        amqp_confirm_select (conn, S_CHANNEL);
        problem = s_rpc_problem (amqp_get_rpc_reply (conn));
    }
    if (problem) {
        fprintf (stderr, "bench_rabbit: setting up queue %s: %s\n", queue, problem);
        amqp_destroy_connection (conn);
        return 1;
    }
    amqp_basic_properties_t props;
    memset (&props, 0, sizeof (props));
    props._flags = AMQP_BASIC_DELIVERY_MODE_FLAG | AMQP_BASIC_CONTENT_TYPE_FLAG;
    props.delivery_mode = AMQP_DELIVERY_PERSISTENT;
    props.content_type = amqp_cstring_bytes ("application/octet-stream");
    amqp_bytes_t body = { (size_t) size, calloc (1, (size_t) (size? size: 1)) };
    s_confirms_t confirms = { calloc ((size_t) messages + 2, sizeof (bool)), 1, 0, 0 };
    int rc = 0;
    uint64_t published = 0;
    int64_t start = s_now_us ();
    while (rc == 0 && confirms.confirmed < (uint64_t) messages) {
        if (published < (uint64_t) messages
            && published - confirms.confirmed < (uint64_t) window) {
            if (amqp_basic_publish (conn, S_CHANNEL, amqp_empty_bytes,
                                    amqp_cstring_bytes (queue), 0, 0, &props, body)
                != AMQP_STATUS_OK) {
                fprintf (stderr, "bench_rabbit: publish failed\n");
                rc = -1;
            }
            published++;
            //  Take the confirms that are already here, without waiting
            int got = rc == 0? 1: 0;
            while (got == 1)
                got = s_read_confirms (conn, &confirms, 0);
            if (got == -1)
                rc = -1;
        }
        else
        if (s_read_confirms (conn, &confirms, -1) == -1)
            rc = -1;
    }
    int64_t elapsed = s_now_us () - start;
    if (rc == 0) {
        if (confirms.nacked)
            fprintf (stderr, "bench_rabbit: the broker refused %" PRIu64 " of %d\n",
                     confirms.nacked, messages);
        double rate = (double) (confirms.confirmed - confirms.nacked) * 1e6 / (double) elapsed;
        printf ("confirmed_per_second %.0f\n", rate);
        bench_json_t *json = bench_json_new ("bench_rabbit", json_path);
        char name [96];
        snprintf (name, sizeof (name), "rabbitmq.confirmed_per_second.window_%d", window);
        bench_json_measure (json, name, rate, "messages/s", NULL, 0);
        if (bench_json_destroy (&json))
            rc = -1;
        amqp_queue_delete (conn, S_CHANNEL, amqp_cstring_bytes (queue), 0, 0);
    }
    amqp_channel_close (conn, S_CHANNEL, AMQP_REPLY_SUCCESS);
    amqp_connection_close (conn, AMQP_REPLY_SUCCESS);
    amqp_destroy_connection (conn);
    free (confirms.acked);
    free (body.bytes);
    return rc == 0? 0: 1;
}

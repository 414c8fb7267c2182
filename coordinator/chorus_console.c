/*  chorus_console.c — the web console's HTTP side: pages built into the
    binary, the JSON API's routes and their checks, and the queue of calls
    that the coordinator's thread answers. A thread per connection
    (libmicrohttpd) waits for its call's answer, so a slow page never holds
    up another; the coordinator never waits for HTTP. The live tail's ring
    and its Server-Sent Events are in chorus_console_tail.c.
*/
#define _GNU_SOURCE     //  pipe2
#include "chorus_console.h"
#include "chorus_console_private.h"
#include "chorus_http_address.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

//  The largest request body taken (a signal's payload, a bulk filter)
#define S_BODY_MAX (64 * 1024)
//  How long a request waits for the coordinator's answer
#define S_ANSWER_MS 15000
//  The most flows a list page shows
#define S_PAGE_MAX 500
//  The header a state change needs: a cross-site form cannot send it, and
//  a cross-site script that tries needs a CORS preflight we never allow
#define S_HEADER "X-Chorus-Console"

struct _chorus_console_call_t {
    json_t *request;                //  {"op": ..., ...}
    json_t *answer;                 //  the value, or {"error": {...}}
    unsigned status;                //  HTTP status of the answer
    bool done;                      //  answered
    bool abandoned;                 //  its request gave up: whoever answers frees it
    chorus_console_call_t *next;    //  in the queue
};

//  What a request gathers between libmicrohttpd's calls of the handler
typedef struct {
    char *body;                     //  the body so far
    size_t size;                    //  its size
    bool too_big;                   //  more than S_BODY_MAX came
    bool started;                   //  the handler saw the headers
} s_request_t;

static void
s_call_free (chorus_console_call_t *call)
{
    json_decref (call->request);
    json_decref (call->answer);
    free (call);
}

//  --------------------------------------------------------------------------
//  Answers

static enum MHD_Result
s_send (struct MHD_Connection *connection, unsigned status, const char *type, const void *body,
        size_t size, bool copy)
{
    struct MHD_Response *response = MHD_create_response_from_buffer (
        size, (void *) body, copy? MHD_RESPMEM_MUST_COPY: MHD_RESPMEM_PERSISTENT);
    if (!response)
        return MHD_NO;
    MHD_add_response_header (response, "Content-Type", type);
    MHD_add_response_header (response, "Cache-Control", "no-store");
    MHD_add_response_header (response, "X-Content-Type-Options", "nosniff");
    if (status == MHD_HTTP_UNAUTHORIZED)
        MHD_add_response_header (response, "WWW-Authenticate", "Bearer realm=\"chorus\"");
    enum MHD_Result result = MHD_queue_response (connection, status, response);
    MHD_destroy_response (response);
    return result;
}

static enum MHD_Result
s_send_json (struct MHD_Connection *connection, unsigned status, json_t *value)
{
    char *text = json_dumps (value, JSON_COMPACT);
    json_decref (value);
    if (!text)
        return MHD_NO;
    enum MHD_Result result = s_send (connection, status, "application/json", text, strlen (text),
                                     true);
    free (text);
    return result;
}

static json_t *
s_error_json (const char *code, const char *message)
{
    return json_pack ("{s:{s:s, s:s}}", "error", "code", code, "message", message);
}

static enum MHD_Result
s_send_error (struct MHD_Connection *connection, unsigned status, const char *code,
              const char *format, ...)
{
    char message [512];
    va_list args;
    va_start (args, format);
    vsnprintf (message, sizeof (message), format, args);
    va_end (args);
    return s_send_json (connection, status, s_error_json (code, message));
}

//  The HTTP status of a control command's error code
static unsigned
s_status_of (const char *code)
{
    static const struct { const char *code; unsigned status; } map [] = {
        {"not-found", 404}, {"bad-request", 400}, {"bad-id", 400}, {"bad-filter", 400},
        {"bad-key", 400}, {"unknown-flow", 404}, {"bad-state", 409}, {"ended", 409},
        {"full", 409}, {"conflict", 409}, {"too-big", 413}, {"journal", 503}};
    for (size_t i = 0; i < sizeof (map) / sizeof (map [0]); i++)
        if (strcmp (map [i].code, code) == 0)
            return map [i].status;
    return 500;
}

//  --------------------------------------------------------------------------
//  Calls: queued by the HTTP threads, answered by the coordinator's

//  Hands the request (taken) to the coordinator's thread and waits for the
//  answer; the answer's status and value (new reference)
static unsigned
s_call (chorus_console_t *self, json_t *request, json_t **answer)
{
    chorus_console_call_t *call = (chorus_console_call_t *) calloc (1, sizeof (*call));
    if (!call) {
        json_decref (request);
        *answer = s_error_json ("internal", "out of memory");
        return 500;
    }
    call->request = request;
    struct timespec until;
    clock_gettime (CLOCK_MONOTONIC, &until);
    until.tv_sec += S_ANSWER_MS / 1000;
    pthread_mutex_lock (&self->lock);
    if (self->stopping) {
        pthread_mutex_unlock (&self->lock);
        s_call_free (call);
        *answer = s_error_json ("stopping", "the coordinator is stopping");
        return 503;
    }
    if (self->tail_call)
        self->tail_call->next = call;
    else
        self->head_call = call;
    self->tail_call = call;
    //  A byte says "calls wait"; a full pipe says it already
    if (write (self->wake [1], "c", 1) < 0 && errno != EAGAIN)
        perror ("chorus-coordinator: console");
    int rc = 0;
    while (!call->done && !self->stopping && rc != ETIMEDOUT)
        rc = pthread_cond_timedwait (&self->answered, &self->lock, &until);
    unsigned status;
    if (call->done) {
        status = call->status;
        *answer = json_incref (call->answer);
        pthread_mutex_unlock (&self->lock);
        s_call_free (call);
    }
    else {
        call->abandoned = true;
        pthread_mutex_unlock (&self->lock);
        status = self->stopping? 503: 504;
        *answer = self->stopping? s_error_json ("stopping", "the coordinator is stopping")
                                : s_error_json ("timeout", "the coordinator did not answer "
                                                "within 15 s");
    }
    return status;
}

chorus_console_call_t *
chorus_console_next (chorus_console_t *self)
{
    pthread_mutex_lock (&self->lock);
    chorus_console_call_t *call = self->head_call;
    if (call) {
        self->head_call = call->next;
        if (!self->head_call)
            self->tail_call = NULL;
        call->next = NULL;
    }
    //  Emptied: the wake bytes go; a call queued after this writes one
    if (!self->head_call) {
        char bytes [256];
        while (read (self->wake [0], bytes, sizeof (bytes)) > 0)
            ;
    }
    pthread_mutex_unlock (&self->lock);
    return call;
}

const json_t *
chorus_console_call_request (chorus_console_call_t *call)
{
    return call->request;
}

static void
s_finish (chorus_console_t *self, chorus_console_call_t *call, unsigned status, json_t *answer)
{
    pthread_mutex_lock (&self->lock);
    if (call->abandoned) {
        pthread_mutex_unlock (&self->lock);
        json_decref (answer);
        s_call_free (call);
        return;
    }
    call->status = status;
    call->answer = answer;
    call->done = true;
    pthread_cond_broadcast (&self->answered);
    pthread_mutex_unlock (&self->lock);
}

void
chorus_console_answer (chorus_console_t *self, chorus_console_call_t *call, json_t *value)
{
    s_finish (self, call, 200, value? value: json_null ());
}

void
chorus_console_fail (chorus_console_t *self, chorus_console_call_t *call, const char *code,
                     const char *message)
{
    s_finish (self, call, s_status_of (code), s_error_json (code, message));
}

int
chorus_console_fd (chorus_console_t *self)
{
    return self->wake [0];
}

//  --------------------------------------------------------------------------
//  Reading requests: query parameters and bodies

//  A whole decimal integer within [low, high]; false otherwise
static bool
s_integer (const char *text, long long low, long long high, long long *value)
{
    if (!text || !*text)
        return false;
    char *end;
    errno = 0;
    long long number = strtoll (text, &end, 10);
    if (*end || errno || number < low || number > high)
        return false;
    *value = number;
    return true;
}

//  The query parameters a route takes: each an integer, a string, or one
//  of a set of words
typedef struct {
    const char *name;               //  the parameter
    char kind;                      //  'i' integer, 's' string, 'w' one of words
    long long low, high;            //  integers: the range
    const char *words;              //  'w': the words allowed, space-separated
} s_param_t;

typedef struct {
    const s_param_t *params;        //  the route's
    json_t *into;                   //  the values read
    char problem [512];             //  the first bad one, "" if none
} s_query_t;

static const char *s_params_known (const s_param_t *params, char *text, size_t size)
{
    text [0] = 0;
    for (const s_param_t *param = params; param->name; param++)
        snprintf (text + strlen (text), size - strlen (text), "%s%s",
                  param == params? "": ", ", param->name);
    return text [0]? text: "none";
}

static enum MHD_Result
s_query_each (void *arg, enum MHD_ValueKind kind, const char *key, const char *value)
{
    (void) kind;
    s_query_t *query = (s_query_t *) arg;
    if (query->problem [0])
        return MHD_NO;
    const s_param_t *param = query->params;
    while (param->name && strcmp (param->name, key))
        param++;
    char known [256];
    if (!param->name) {
        snprintf (query->problem, sizeof (query->problem), "unknown parameter '%.64s' "
                  "(this route takes: %s)", key, s_params_known (query->params, known,
                  sizeof (known)));
        return MHD_NO;
    }
    if (!value || !*value)
        return MHD_YES;             //  an empty field of a form: not given
    long long number;
    if (param->kind == 'i') {
        if (!s_integer (value, param->low, param->high, &number)) {
            snprintf (query->problem, sizeof (query->problem), "parameter '%s' must be an "
                      "integer from %lld to %lld, not '%.64s'", key, param->low, param->high,
                      value);
            return MHD_NO;
        }
        json_object_set_new (query->into, key, json_integer (number));
        return MHD_YES;
    }
    if (param->kind == 'w') {
        size_t length = strlen (value);
        const char *at = strstr (param->words, value);
        bool found = false;
        for (; at && !found; at = strstr (at + 1, value))
            found = (at == param->words || at [-1] == ' ')
                 && (at [length] == ' ' || at [length] == 0);
        if (!found) {
            snprintf (query->problem, sizeof (query->problem), "parameter '%s' must be one of "
                      "%s, not '%.64s'", key, param->words, value);
            return MHD_NO;
        }
    }
    else
    if (strlen (value) > (size_t) param->high) {
        snprintf (query->problem, sizeof (query->problem), "parameter '%s' is longer than "
                  "%lld characters", key, param->high);
        return MHD_NO;
    }
    json_object_set_new (query->into, key, json_string (value));
    return MHD_YES;
}

//  The route's query parameters as an object (new reference), or NULL
//  with the problem in problem
static json_t *
s_query (struct MHD_Connection *connection, const s_param_t *params, char *problem,
         size_t problem_size)
{
    s_query_t query = {params, json_object (), ""};
    MHD_get_connection_values (connection, MHD_GET_ARGUMENT_KIND, s_query_each, &query);
    if (query.problem [0]) {
        snprintf (problem, problem_size, "%s", query.problem);
        json_decref (query.into);
        return NULL;
    }
    return query.into;
}

#define S_STATES "running compensating completed failed cancelled stuck"
static const s_param_t s_list_params [] = {
    {"flow", 's', 0, 128, NULL}, {"state", 'w', 0, 0, S_STATES},
    {"version", 'i', 1, 1000000000, NULL}, {"since", 'i', 0, 1LL << 53, NULL},
    {"until", 'i', 0, 1LL << 53, NULL}, {"q", 's', 0, 128, NULL},
    {"offset", 'i', 0, 1000000000, NULL}, {"limit", 'i', 1, S_PAGE_MAX, NULL},
    {NULL, 0, 0, 0, NULL}};
static const s_param_t s_status_params [] = {
    {"from", 'i', 0, 1000000000, NULL}, {"to", 'i', 0, 1000000000, NULL},
    {NULL, 0, 0, 0, NULL}};
static const s_param_t s_tail_params [] = {
    {"topic", 's', 0, 256, NULL}, {NULL, 0, 0, 0, NULL}};
static const s_param_t s_no_params [] = {{NULL, 0, 0, 0, NULL}};

//  The body as a JSON object (new reference), or NULL with the problem
static json_t *
s_body_object (s_request_t *request, char *problem, size_t problem_size)
{
    if (!request->size) {
        snprintf (problem, problem_size, "the request needs a JSON object as its body");
        return NULL;
    }
    json_error_t error;
    json_t *body = json_loadb (request->body, request->size, 0, &error);
    if (!body)
        snprintf (problem, problem_size, "the body is not JSON: %s (line %d, column %d)",
                  error.text, error.line, error.column);
    else
    if (!json_is_object (body)) {
        snprintf (problem, problem_size, "the body must be a JSON object");
        json_decref (body);
        body = NULL;
    }
    return body;
}

//  A bulk action's filter, checked as the list's query parameters are
static json_t *
s_bulk_filter (json_t *filter, char *problem, size_t problem_size)
{
    if (!json_is_object (filter)) {
        snprintf (problem, problem_size, "\"filter\" must be an object of the list's "
                  "parameters (flow, state, version, since, until, q)");
        return NULL;
    }
    const char *key;
    json_t *value;
    json_object_foreach (filter, key, value) {
        const s_param_t *param = s_list_params;
        while (param->name && strcmp (param->name, key))
            param++;
        bool ok = param->name && strcmp (key, "offset") && strcmp (key, "limit");
        if (ok && param->kind == 'i')
            ok = json_is_integer (value) && json_integer_value (value) >= param->low
                 && json_integer_value (value) <= param->high;
        else
        if (ok && param->kind == 'w') {
            const char *word = json_string_value (value);
            ok = word && *word && !strchr (word, ' ') && strstr (param->words, word);
        }
        else
        if (ok)
            ok = json_is_string (value) && json_string_length (value) <= (size_t) param->high;
        if (!ok) {
            snprintf (problem, problem_size, "bad filter field '%.64s': the fields are flow "
                      "(a name), state (one of " S_STATES "), version, since and until "
                      "(integers) and q (a key or id)", key);
            return NULL;
        }
    }
    return json_incref (filter);
}

//  --------------------------------------------------------------------------
//  Routes

static bool
s_authorized (chorus_console_t *self, struct MHD_Connection *connection)
{
    if (!self->token)
        return true;
    const char *given = MHD_lookup_connection_value (connection, MHD_HEADER_KIND,
                                                     "Authorization");
    if (!given || strncmp (given, "Bearer ", 7))
        return false;
    given += 7;
    //  In time that does not depend on where they differ
    size_t length = strlen (self->token), given_length = strlen (given);
    unsigned char differ = length != given_length;
    for (size_t i = 0; i < length; i++)
        differ |= (unsigned char) (self->token [i] ^ (i < given_length? given [i]: 0));
    return differ == 0;
}

//  A flow id or correlation id in a path: 1 to 256 printable characters
//  without '/'
static bool
s_id_ok (const char *id)
{
    size_t length = strlen (id);
    if (length == 0 || length > 256)
        return false;
    for (const char *c = id; *c; c++)
        if (*c == '/' || (unsigned char) *c <= ' ' || *c == 0x7f)
            return false;
    return true;
}

static enum MHD_Result
s_answer_call (chorus_console_t *self, struct MHD_Connection *connection, json_t *request)
{
    json_t *answer;
    unsigned status = s_call (self, request, &answer);
    return s_send_json (connection, status, answer);
}

//  GET /api/...
static enum MHD_Result
s_api_get (chorus_console_t *self, struct MHD_Connection *connection, const char *path)
{
    char problem [512];
    if (strcmp (path, "flows") == 0) {
        json_t *query = s_query (connection, s_list_params, problem, sizeof (problem));
        if (!query)
            return s_send_error (connection, 400, "bad-filter", "%s", problem);
        return s_answer_call (self, connection, json_pack ("{s:s, s:o}", "op", "list",
                                                           "filter", query));
    }
    if (strncmp (path, "flows/", 6) == 0 && s_id_ok (path + 6)) {
        json_t *query = s_query (connection, s_status_params, problem, sizeof (problem));
        if (!query)
            return s_send_error (connection, 400, "bad-request", "%s", problem);
        json_object_set_new (query, "op", json_string ("status"));
        json_object_set_new (query, "id", json_string (path + 6));
        return s_answer_call (self, connection, query);
    }
    if (strncmp (path, "trace/", 6) == 0 && s_id_ok (path + 6)) {
        json_t *query = s_query (connection, s_no_params, problem, sizeof (problem));
        if (!query)
            return s_send_error (connection, 400, "bad-request", "%s", problem);
        json_decref (query);
        json_t *answer;
        unsigned status = s_call (self, json_pack ("{s:s, s:s}", "op", "trace", "correlation",
                                                   path + 6), &answer);
        if (status == 200)
            chorus__console_trace_tree (answer);
        return s_send_json (connection, status, answer);
    }
    if (strcmp (path, "tail") == 0) {
        json_t *query = s_query (connection, s_tail_params, problem, sizeof (problem));
        if (!query)
            return s_send_error (connection, 400, "bad-request", "%s", problem);
        enum MHD_Result result = chorus__console_tail (
            self, connection, json_string_value (json_object_get (query, "topic")),
            MHD_lookup_connection_value (connection, MHD_HEADER_KIND, "Last-Event-ID"));
        json_decref (query);
        return result;
    }
    return s_send_error (connection, 404, "not-found", "no such API route: GET /api/%.200s",
                         path);
}

//  POST /api/...: state changes
static enum MHD_Result
s_api_post (chorus_console_t *self, struct MHD_Connection *connection, const char *path,
            s_request_t *request)
{
    char problem [512];
    const char *action = strrchr (path, '/');
    if (strncmp (path, "flows/", 6) == 0 && action && action > path + 6) {
        char id [300];
        snprintf (id, sizeof (id), "%.*s", (int) (action - path - 6), path + 6);
        action++;
        if (!s_id_ok (id)
        ||  (strcmp (action, "cancel") && strcmp (action, "retry") && strcmp (action, "signal")))
            return s_send_error (connection, 404, "not-found", "no such API route: POST "
                                 "/api/%.200s (actions: cancel, retry, signal)", path);
        json_t *call = json_pack ("{s:s, s:s}", "op", action, "id", id);
        if (strcmp (action, "signal") == 0) {
            json_t *body = s_body_object (request, problem, sizeof (problem));
            if (!body) {
                json_decref (call);
                return s_send_error (connection, 400, "bad-request", "%s", problem);
            }
            json_object_update (body, call);
            json_decref (call);
            call = body;
        }
        return s_answer_call (self, connection, call);
    }
    if (strcmp (path, "bulk") == 0) {
        json_t *body = s_body_object (request, problem, sizeof (problem));
        const char *bulk = body? json_string_value (json_object_get (body, "action")): NULL;
        json_t *filter = body? s_bulk_filter (json_object_get (body, "filter"), problem,
                                              sizeof (problem)): NULL;
        if (body && filter && (!bulk || (strcmp (bulk, "retry") && strcmp (bulk, "cancel"))))
            snprintf (problem, sizeof (problem), "\"action\" must be \"retry\" or \"cancel\"");
        else
        if (body && filter) {
            //  bulk is the body's: packed before the body goes
            json_t *call = json_pack ("{s:s, s:s, s:o}", "op", "bulk", "action", bulk,
                                      "filter", filter);
            json_decref (body);
            return s_answer_call (self, connection, call);
        }
        json_decref (body);
        json_decref (filter);
        return s_send_error (connection, 400, "bad-request", "%s", problem);
    }
    return s_send_error (connection, 404, "not-found", "no such API route: POST /api/%.200s",
                         path);
}

//  Whether a GET route of the API exists for this path, to say 405 to a
//  POST of it
static bool
s_is_get_route (const char *path)
{
    return strcmp (path, "flows") == 0 || strcmp (path, "tail") == 0
        || (strncmp (path, "flows/", 6) == 0 && !strchr (path + 6, '/'))
        || strncmp (path, "trace/", 6) == 0;
}

static enum MHD_Result
s_handle (void *cls, struct MHD_Connection *connection, const char *url, const char *method,
          const char *version, const char *upload_data, size_t *upload_data_size,
          void **con_cls)
{
    (void) version;
    chorus_console_t *self = (chorus_console_t *) cls;
    s_request_t *request = (s_request_t *) *con_cls;
    bool post = strcmp (method, "POST") == 0;
    bool api = strncmp (url, "/api/", 5) == 0;
    if (!request) {
        request = (s_request_t *) calloc (1, sizeof (*request));
        if (!request)
            return MHD_NO;
        *con_cls = request;
        //  A body announced far too big is refused before it comes (the
        //  client may see the connection close as it sends); one a little
        //  too big is read, dropped, and refused after
        const char *length = MHD_lookup_connection_value (connection, MHD_HEADER_KIND,
                                                          "Content-Length");
        long long size;
        if (length && s_integer (length, 0, 1LL << 62, &size) && size > 16 * S_BODY_MAX)
            return s_send_error (connection, 413, "too-big", "the body is %lld bytes, more "
                                 "than the %d bytes a request may carry", size, S_BODY_MAX);
        return MHD_YES;
    }
    if (*upload_data_size) {
        if (request->size + *upload_data_size > S_BODY_MAX)
            request->too_big = true;
        else {
            char *body = (char *) realloc (request->body, request->size + *upload_data_size);
            if (!body)
                return MHD_NO;
            memcpy (body + request->size, upload_data, *upload_data_size);
            request->body = body;
            request->size += *upload_data_size;
        }
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (!api) {
        if (strcmp (method, "GET") && strcmp (method, "HEAD"))
            return s_send (connection, 405, "text/plain", "only GET\n", 9, false);
        const chorus_console_asset_t *asset = chorus_console_assets;
        const char *name = strcmp (url, "/") == 0? "/index.html": url;
        while (asset->path && strcmp (asset->path, name))
            asset++;
        if (!asset->path)
            return s_send (connection, 404, "text/plain", "not found\n", 10, false);
        return s_send (connection, 200, asset->type, asset->data, asset->size, false);
    }
    if (!s_authorized (self, connection))
        return s_send_error (connection, 401, "unauthorized", "this console needs its token: "
                             "the header Authorization: Bearer TOKEN (chorus-coordinator "
                             "--http-token)");
    const char *path = url + 5;
    if (post) {
        if (request->too_big)
            return s_send_error (connection, 413, "too-big", "the body is more than the %d "
                                 "bytes a request may carry", S_BODY_MAX);
        const char *header = MHD_lookup_connection_value (connection, MHD_HEADER_KIND,
                                                          S_HEADER);
        if (!header || !*header)
            return s_send_error (connection, 403, "missing-header", "a state change needs the "
                                 "header " S_HEADER ": 1 (which a cross-site form cannot send)");
        if (s_is_get_route (path))
            return s_send_error (connection, 405, "method-not-allowed", "/api/%.200s takes GET",
                                 path);
        return s_api_post (self, connection, path, request);
    }
    if (strcmp (method, "GET") && strcmp (method, "HEAD"))
        return s_send_error (connection, 405, "method-not-allowed", "the API takes GET and "
                             "POST, not %.32s", method);
    if (!s_is_get_route (path) && (strcmp (path, "bulk") == 0 || strncmp (path, "flows/", 6) == 0))
        return s_send_error (connection, 405, "method-not-allowed", "/api/%.200s takes POST",
                             path);
    return s_api_get (self, connection, path);
}

static void
s_completed (void *cls, struct MHD_Connection *connection, void **con_cls,
             enum MHD_RequestTerminationCode code)
{
    (void) cls; (void) connection; (void) code;
    s_request_t *request = (s_request_t *) *con_cls;
    if (request) {
        free (request->body);
        free (request);
        *con_cls = NULL;
    }
}

//  --------------------------------------------------------------------------

chorus_console_t *
chorus_console_new (const char *address, const char *token, char *error, size_t error_size)
{
    struct sockaddr_in addr;
    if (!chorus__http_address_parse (address, &addr)) {
        snprintf (error, error_size, "console address '%s' is not HOST:PORT (an IPv4 address "
                  "or localhost, and a port from 0 to 65535)", address? address: "");
        return NULL;
    }
    chorus_console_t *self = (chorus_console_t *) calloc (1, sizeof (*self));
    if (!self) {
        snprintf (error, error_size, "out of memory");
        return NULL;
    }
    self->wake [0] = self->wake [1] = -1;
    pthread_mutex_init (&self->lock, NULL);
    pthread_condattr_t attr;
    pthread_condattr_init (&attr);
    pthread_condattr_setclock (&attr, CLOCK_MONOTONIC);
    pthread_cond_init (&self->answered, &attr);
    pthread_cond_init (&self->tail_news, &attr);
    pthread_condattr_destroy (&attr);
    self->boot = (uint64_t) time (NULL);
    self->tail_next = 1;
    self->token = token? strdup (token): NULL;
    if (pipe2 (self->wake, O_NONBLOCK | O_CLOEXEC)) {
        snprintf (error, error_size, "cannot make the console's pipe: %s", strerror (errno));
        chorus_console_destroy (&self);
        return NULL;
    }
    //  Room for the connections it takes (1,200), beside the node's sockets
    struct rlimit files;
    if (getrlimit (RLIMIT_NOFILE, &files) == 0 && files.rlim_cur < 4096
    &&  files.rlim_cur < files.rlim_max) {
        files.rlim_cur = files.rlim_max < 4096? files.rlim_max: 4096;
        setrlimit (RLIMIT_NOFILE, &files);
    }
    //  A thread per connection: a request waits for the coordinator, and a
    //  tail for events, without holding up the others
    self->daemon = MHD_start_daemon (MHD_USE_THREAD_PER_CONNECTION
                                     | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL, 0,
                                     NULL, NULL, s_handle, self,
                                     MHD_OPTION_SOCK_ADDR, (struct sockaddr *) &addr,
                                     MHD_OPTION_CONNECTION_LIMIT, (unsigned int) 1200,
                                     MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int) 60,
                                     MHD_OPTION_THREAD_STACK_SIZE, (size_t) 512 * 1024,
                                     MHD_OPTION_NOTIFY_COMPLETED, s_completed, self,
                                     MHD_OPTION_END);
    if (!self->daemon) {
        snprintf (error, error_size, "cannot serve the console on %s: the address cannot be "
                  "bound (in use, or not an address of this host?)", address);
        chorus_console_destroy (&self);
        return NULL;
    }
    chorus__http_address_bound (self->daemon, &addr, self->address, sizeof (self->address));
    return self;
}

void
chorus_console_destroy (chorus_console_t **self_p)
{
    if (*self_p) {
        chorus_console_t *self = *self_p;
        //  Requests waiting for an answer, and tails waiting for events,
        //  end now: the daemon's threads can then be joined
        pthread_mutex_lock (&self->lock);
        self->stopping = true;
        pthread_cond_broadcast (&self->answered);
        pthread_cond_broadcast (&self->tail_news);
        pthread_mutex_unlock (&self->lock);
        if (self->daemon)
            MHD_stop_daemon (self->daemon);
        while (self->head_call) {
            chorus_console_call_t *call = self->head_call;
            self->head_call = call->next;
            s_call_free (call);
        }
        chorus__console_tail_clear (self);
        for (int i = 0; i < 2; i++)
            if (self->wake [i] >= 0)
                close (self->wake [i]);
        pthread_cond_destroy (&self->answered);
        pthread_cond_destroy (&self->tail_news);
        pthread_mutex_destroy (&self->lock);
        free (self->token);
        free (self);
        *self_p = NULL;
    }
}

const char *
chorus_console_address (chorus_console_t *self)
{
    return self->address;
}

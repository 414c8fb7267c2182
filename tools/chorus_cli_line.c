/*  chorus_cli_line.c — what a --persistent handler's reply line says, for
    `chorus serve` and `chorus on` alike: a payload, an error with its code
    and whether to try again, or why the line is not a reply at all.
*/
#include "chorus_cli.h"

#include <string.h>

//  Says why the line is not a reply; always returns -1
static int
s_problem (chorus_cli_line_t *self, const char *format, const char *detail)
{
    snprintf (self->problem, sizeof (self->problem), format, detail);
    return -1;
}

int
chorus_cli_line_read (chorus_cli_line_t *self, json_t *reply, const json_error_t *error,
                      bool payloads)
{
    memset (self, 0, sizeof (*self));
    if (!reply)
        return s_problem (self, "not JSON: %.100s", error? error->text: "");
    if (!json_is_object (reply))
        return s_problem (self, "%s", "not a JSON object");
    if (!json_is_string (json_object_get (reply, "id")))
        return s_problem (self, "%s", "no \"id\" string");
    //  null is as good as left out, as many JSON writers put it
    json_t *payload = json_object_get (reply, "payload");
    if (json_is_null (payload) || !payloads)
        payload = NULL;
    json_t *fault = json_object_get (reply, "error");
    if (json_is_null (fault))
        fault = NULL;
    if (!fault) {
        self->payload = payload;
        return 0;
    }
    if (payload)
        return s_problem (self, "%s", "both \"payload\" and \"error\"");
    if (!json_is_object (fault))
        return s_problem (self, "%s", "\"error\" is not an object");
    self->code = json_string_value (json_object_get (fault, "code"));
    if (!self->code || !*self->code)
        return s_problem (self, "%s", "an \"error\" without a \"code\" string");
    json_t *message = json_object_get (fault, "message");
    if (message && !json_is_null (message) && !json_is_string (message))
        return s_problem (self, "%s", "the error's \"message\" is not a string");
    self->message = json_string_value (message);
    json_t *retryable = json_object_get (fault, "retryable");
    if (retryable && !json_is_null (retryable) && !json_is_boolean (retryable))
        return s_problem (self, "%s", "the error's \"retryable\" is not true or false");
    self->retryable = !json_is_false (retryable);
    return 0;
}

void
chorus_cli_status_text (int status, char *text, size_t size)
{
    if (status > 128)
        snprintf (text, size, "was killed by signal %d", status - 128);
    else
        snprintf (text, size, "exited with status %d", status);
}

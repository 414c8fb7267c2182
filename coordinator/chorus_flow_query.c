/*  chorus_flow_query.c — flows seen from outside, for the console: the
    filter of its list and bulk actions, a flow's line, a definition's graph.
*/
#include "chorus_flow_query.h"

#include <string.h>

static bool
s_contains (const char *text, const char *part)
{
    return text && strstr (text, part);
}

bool
chorus_flow_query_matches (chorus_flow_t *flow, const json_t *filter)
{
    chorus_flowdef_t *def = chorus_flow_def (flow);
    json_t *value;
    if ((value = json_object_get (filter, "flow"))
    &&  (!json_is_string (value) || strcmp (json_string_value (value), chorus_flowdef_name (def))))
        return false;
    if ((value = json_object_get (filter, "state"))
    &&  (!json_is_string (value)
         || strcmp (json_string_value (value), chorus_flow_state_name (chorus_flow_state (flow)))))
        return false;
    if ((value = json_object_get (filter, "version"))
    &&  (!json_is_integer (value) || json_integer_value (value) != chorus_flowdef_version (def)))
        return false;
    json_int_t started = (json_int_t) chorus_flow_started_at (flow);
    if ((value = json_object_get (filter, "since"))
    &&  (!json_is_integer (value) || started < json_integer_value (value)))
        return false;
    if ((value = json_object_get (filter, "until"))
    &&  (!json_is_integer (value) || started > json_integer_value (value)))
        return false;
    if ((value = json_object_get (filter, "q"))) {
        const char *part = json_string_value (value);
        if (!part || !(s_contains (chorus_flow_id (flow), part)
                       || s_contains (chorus_flow_business_key (flow), part)))
            return false;
    }
    return true;
}

json_t *
chorus_flow_query_line (chorus_flow_t *flow)
{
    chorus_flowdef_t *def = chorus_flow_def (flow);
    uint64_t finished = chorus_flow_finished_at (flow);
    json_t *error = chorus_flow_error_json (flow);
    json_t *code = json_object_get (error, "code");
    json_t *line = json_pack ("{s:s, s:s, s:i, s:s, s:s?, s:I, s:o, s:O?}",
                              "id", chorus_flow_id (flow), "flow", chorus_flowdef_name (def),
                              "version", chorus_flowdef_version (def),
                              "state", chorus_flow_state_name (chorus_flow_state (flow)),
                              "key", chorus_flow_business_key (flow),
                              "started", (json_int_t) chorus_flow_started_at (flow),
                              "finished", finished? json_integer ((json_int_t) finished)
                                                  : json_null (),
                              "error", code);
    if (line && !json_object_get (line, "key"))
        json_object_set_new (line, "key", json_null ());
    if (line && !json_object_get (line, "error"))
        json_object_set_new (line, "error", json_null ());
    json_decref (error);
    return line;
}

json_t *
chorus_flow_query_graph (chorus_flowdef_t *def)
{
    json_t *steps = json_array ();
    size_t count = chorus_flowdef_steps (def);
    for (size_t index = 0; index < count; index++) {
        const chorus_stepdef_t *step = chorus_flowdef_step (def, index);
        json_t *depends = json_array ();
        for (size_t d = 0; d < step->depends_size; d++)
            json_array_append_new (depends, json_string (step->depends_on [d]));
        const char *kind = step->sleep? "sleep": chorus_stepdef_awaits (step)? "await"
                         : step->flow? "flow": "command";
        json_t *line = json_pack ("{s:s, s:s, s:o}", "id", step->id, "kind", kind,
                                  "depends_on", depends);
        json_object_set_new (line, "service", step->service? json_string (step->service)
                                                           : json_null ());
        json_object_set_new (line, "command", step->command? json_string (step->command)
                                                           : json_null ());
        json_object_set_new (line, "flow", step->flow? json_string (step->flow): json_null ());
        json_object_set_new (line, "for_each", step->for_each? json_string (step->for_each)
                                                             : json_null ());
        json_object_set_new (line, "when", step->when_text? json_string (step->when_text)
                                                          : json_null ());
        json_object_set_new (line, "compensate", step->compensate?
                             json_string (step->compensate): json_null ());
        json_array_append_new (steps, line);
    }
    return json_pack ("{s:s, s:i, s:o}", "flow", chorus_flowdef_name (def),
                      "version", chorus_flowdef_version (def), "steps", steps);
}

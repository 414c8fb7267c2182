/*  chorus_flow_query.h — flows seen from outside, for the console: which
    flows a filter selects, a flow's line in a list, and a definition's
    graph of steps (the DAG the console draws). Reads flows, changes none.
*/
#ifndef CHORUS_FLOW_QUERY_H_INCLUDED
#define CHORUS_FLOW_QUERY_H_INCLUDED

#include "chorus_flow.h"

//  Whether the flow passes the filter, an object of optional fields:
//  "flow" (its definition's name), "state" (a state name), "version",
//  "since" and "until" (its start, ms since the epoch, both included) and
//  "q" (part of its id, or of its business key). Fields of the wrong type
//  select nothing.
bool
    chorus_flow_query_matches (chorus_flow_t *flow, const json_t *filter);
//  The flow's line in a list (new reference): id, flow, version, state,
//  key, started, finished, error (its code, or null)
json_t *
    chorus_flow_query_line (chorus_flow_t *flow);
//  The definition's steps as a graph (new reference): {"flow", "version",
//  "steps": [{"id", "kind" (command, flow, sleep, await), "service",
//  "command", "flow", "depends_on": [...], "for_each", "when",
//  "compensate"}]}, absent fields null
json_t *
    chorus_flow_query_graph (chorus_flowdef_t *def);

#endif

/*  console.js — the Chorus console's pages: plain JavaScript over the JSON
    API under /api/ (coordinator/HTTP.md). Pages are routes of the hash
    (#/flows, #/flow/ID, #/bulk, #/trace/ID, #/tail); every value from the
    API is put in the page as text, never as HTML. */
'use strict';

const main = document.getElementById ('main');
const statusLine = document.getElementById ('status');
let leave = null;               //  stops what the current page runs (timers, tails)

//  An element: h ('td', {class: 'x'}, 'text', child, ...)
function h (tag, attrs, ...children) {
    const svg = ['svg', 'g', 'rect', 'text', 'path', 'defs', 'marker', 'title'].includes (tag);
    const node = svg ? document.createElementNS ('http://www.w3.org/2000/svg', tag)
                     : document.createElement (tag);
    for (const [name, value] of Object.entries (attrs || {})) {
        if (value === undefined || value === null || value === false)
            continue;
        if (name.startsWith ('on'))
            node.addEventListener (name.slice (2), value);
        else
            node.setAttribute (name, value === true ? '' : String (value));
    }
    for (const child of children.flat ()) {
        if (child === null || child === undefined || child === false)
            continue;
        node.append (child instanceof Node ? child : document.createTextNode (String (child)));
    }
    return node;
}

function show (...nodes) {
    main.replaceChildren (...nodes.flat ().filter ((node) => node !== null && node !== undefined
                                                               && node !== false));
}

function when (ms) {
    return ms ? new Date (ms).toISOString ().replace ('T', ' ').replace ('Z', '') : '';
}

function took (from, to) {
    if (!from || !to)
        return '';
    const ms = to - from;
    return ms < 1000 ? ms + ' ms' : (ms / 1000).toFixed (ms < 10000 ? 2 : 1) + ' s';
}

function stateBadge (state) {
    return h ('span', {class: 'state s-' + state, 'data-state': state}, state);
}

function pretty (value) {
    return h ('pre', {}, JSON.stringify (value, null, 2));
}

//  --------------------------------------------------------------------------
//  The API

function token () {
    return sessionStorage.getItem ('chorus-token');
}

function headers (post) {
    const result = {};
    if (token ())
        result ['Authorization'] = 'Bearer ' + token ();
    if (post) {
        result ['X-Chorus-Console'] = '1';
        result ['Content-Type'] = 'application/json';
    }
    return result;
}

class ApiError extends Error {
    constructor (status, body) {
        super ((body && body.error && body.error.message) || ('HTTP ' + status));
        this.status = status;
        this.code = body && body.error && body.error.code;
    }
}

async function api (path, body) {
    const post = body !== undefined;
    const response = await fetch ('/api/' + path, {
        method: post ? 'POST' : 'GET', headers: headers (post),
        body: post ? JSON.stringify (body) : undefined});
    const value = await response.json ().catch (() => null);
    if (response.status === 401) {
        askToken ();
        throw new ApiError (401, value);
    }
    if (!response.ok)
        throw new ApiError (response.status, value);
    return value;
}

function askToken () {
    const input = h ('input', {type: 'password', name: 'token', size: 40});
    show (h ('h1', {}, 'This console needs its token'),
          h ('form', {class: 'filters', onsubmit: (event) => {
              event.preventDefault ();
              sessionStorage.setItem ('chorus-token', input.value.trim ());
              route ();
          }}, h ('label', {}, 'Token (chorus-coordinator --http-token)', input),
             h ('button', {type: 'submit'}, 'Use it')));
}

function failure (error) {
    if (error.status !== 401)
        show (h ('p', {class: 'error'}, String (error.message)));
}

//  --------------------------------------------------------------------------
//  Flows: the list, its filters and search

const FILTERS = ['flow', 'state', 'version', 'since', 'until', 'q'];
const STATES = ['running', 'compensating', 'completed', 'failed', 'cancelled', 'stuck'];

function filterForm (params, onsubmit) {
    const field = (name, label, attrs) =>
        h ('label', {}, label, h ('input', Object.assign ({name, value: params.get (name) || ''},
                                                          attrs || {})));
    const state = h ('select', {name: 'state'}, h ('option', {value: ''}, 'any'),
                     STATES.map ((s) => h ('option', {value: s, selected: params.get ('state') === s},
                                           s)));
    const asLocal = (ms) => ms ? new Date (+ms - new Date ().getTimezoneOffset () * 60000)
                                 .toISOString ().slice (0, 16) : '';
    const since = h ('input', {type: 'datetime-local', name: 'since',
                               value: asLocal (params.get ('since'))});
    const until = h ('input', {type: 'datetime-local', name: 'until',
                               value: asLocal (params.get ('until'))});
    const form = h ('form', {class: 'filters', onsubmit: (event) => {
        event.preventDefault ();
        const out = new URLSearchParams ();
        for (const name of FILTERS) {
            let value = form.elements [name].value.trim ();
            if (value && (name === 'since' || name === 'until'))
                value = String (new Date (value).getTime ());
            if (value)
                out.set (name, value);
        }
        onsubmit (out);
    }},
        field ('q', 'Search: business key or id', {placeholder: 'key or id', size: 24}),
        field ('flow', 'Flow', {size: 12}), h ('label', {}, 'State', state),
        field ('version', 'Version', {size: 4}),
        h ('label', {}, 'Started from', since), h ('label', {}, 'to', until),
        h ('button', {type: 'submit'}, 'Filter'));
    return form;
}

function flowRow (flow) {
    return h ('tr', {'data-id': flow.id},
              h ('td', {}, h ('a', {href: '#/flow/' + encodeURIComponent (flow.id)}, flow.id)),
              h ('td', {}, flow.flow + ' v' + flow.version), h ('td', {}, stateBadge (flow.state)),
              h ('td', {}, flow.key === null ? '' : flow.key), h ('td', {}, when (flow.started)),
              h ('td', {}, took (flow.started, flow.finished)), h ('td', {}, flow.error || ''));
}

async function flowsPage (params) {
    const offset = +(params.get ('offset') || 0);
    const limit = 50;
    const query = new URLSearchParams (params);
    query.set ('limit', limit);
    const list = await api ('flows?' + query);
    const go = (changes) => {
        const next = new URLSearchParams (params);
        for (const [name, value] of Object.entries (changes))
            value === null ? next.delete (name) : next.set (name, value);
        location.hash = '#/flows?' + next;
    };
    show (h ('h1', {}, 'Flows'),
          filterForm (params, (out) => { location.hash = '#/flows?' + out; }),
          h ('p', {id: 'flows-total'}, list.total + ' flows' +
             (list.total ? ', ' + (offset + 1) + ' to ' + (offset + list.flows.length) : '')),
          h ('table', {id: 'flows'},
             h ('thead', {}, h ('tr', {}, ['Id', 'Flow', 'State', 'Key', 'Started', 'Took', 'Error']
                                          .map ((name) => h ('th', {}, name)))),
             h ('tbody', {}, list.flows.map (flowRow))),
          h ('p', {class: 'actions'},
             h ('button', {disabled: offset === 0,
                           onclick: () => go ({offset: Math.max (0, offset - limit) || null})},
                'Newer'),
             h ('button', {disabled: offset + limit >= list.total,
                           onclick: () => go ({offset: offset + limit})}, 'Older'),
             h ('a', {href: '#/bulk?' + params}, 'Act on all of these…')));
}

//  --------------------------------------------------------------------------
//  One flow: its DAG, its tries, its values and its buttons

//  Lays the steps out in columns by their depth in the graph
function layout (steps) {
    const byId = new Map (steps.map ((step) => [step.id, step]));
    const depth = new Map ();
    const depthOf = (step, seen) => {
        if (depth.has (step.id))
            return depth.get (step.id);
        if (seen.has (step.id))
            return 0;
        seen.add (step.id);
        let d = 0;
        for (const name of step.depends_on)
            if (byId.has (name))
                d = Math.max (d, depthOf (byId.get (name), seen) + 1);
        depth.set (step.id, d);
        return d;
    };
    const columns = [];
    for (const step of steps) {
        const d = depthOf (step, new Set ());
        (columns [d] = columns [d] || []).push (step);
    }
    const place = new Map ();
    columns.forEach ((column, x) => column.forEach ((step, y) => place.set (step.id, {x, y})));
    return {columns, place};
}

function stepSummary (status) {
    if (!status)
        return 'pending';
    if (status.items_total !== undefined) {
        const counts = Object.entries (status.counts || {}).map (([s, n]) => n + ' ' + s);
        return status.items_total + ' items' + (counts.length ? ': ' + counts.join (', ') : '');
    }
    return status.state + (status.attempts > 1 ? ', ' + status.attempts + ' tries' : '');
}

function dag (flow, onpick) {
    const steps = flow.definition.steps;
    const statusOf = new Map (flow.steps.map ((step) => [step.id, step]));
    const {columns, place} = layout (steps);
    const W = 180, H = 46, GX = 60, GY = 22;
    const height = Math.max (1, ...columns.map ((c) => c.length)) * (H + GY) + GY;
    const width = columns.length * (W + GX) + GX;
    const at = (id) => ({x: GX + place.get (id).x * (W + GX), y: GY + place.get (id).y * (H + GY)});
    const svg = h ('svg', {class: 'dag', width, height, viewBox: `0 0 ${width} ${height}`,
                           role: 'img', 'aria-label': 'the steps of ' + flow.flow},
        h ('defs', {}, h ('marker', {id: 'arrow', viewBox: '0 0 10 10', refX: 10, refY: 5,
                                     markerWidth: 6, markerHeight: 6, orient: 'auto'},
                          h ('path', {d: 'M0,0 L10,5 L0,10 z', fill: '#889'}))));
    for (const step of steps)
        for (const name of step.depends_on) {
            if (!place.has (name))
                continue;
            const from = at (name), to = at (step.id);
            const x1 = from.x + W, y1 = from.y + H / 2, x2 = to.x, y2 = to.y + H / 2;
            svg.append (h ('path', {class: 'edge', d: `M${x1},${y1} C${x1 + GX / 2},${y1} ` +
                                                      `${x2 - GX / 2},${y2} ${x2},${y2}`}));
        }
    for (const step of steps) {
        const status = statusOf.get (step.id);
        const state = status ? status.state : 'pending';
        const {x, y} = at (step.id);
        const kind = step.for_each ? 'for each ' + step.for_each
                   : step.kind === 'command' ? step.service + ' ' + step.command
                   : step.kind === 'flow' ? 'flow ' + step.flow : step.kind;
        svg.append (h ('g', {class: 'step state-' + state, 'data-step': step.id,
                             'data-state': state, transform: `translate(${x},${y})`,
                             onclick: () => onpick (step.id)},
                       h ('title', {}, step.id + ': ' + stepSummary (status) +
                          (step.when ? ' (when ' + step.when + ')' : '')),
                       h ('rect', {width: W, height: H, rx: 6}),
                       h ('text', {x: 8, y: 16, 'font-weight': 'bold'}, step.id.slice (0, 24)),
                       h ('text', {x: 8, y: 30}, kind.slice (0, 28)),
                       h ('text', {x: 8, y: 42, fill: '#555'}, stepSummary (status).slice (0, 28))));
    }
    return svg;
}

//  A task's name in the timeline: STEP or STEP[ITEM]
function taskName (step, item) {
    return item === null || item === undefined ? step : step + '[' + item + ']';
}

//  The timeline: a row per task, each try a bar of its own (coloured by its
//  outcome), then every try in a table; tries come from the trace of the
//  commands the coordinator sent (flow.tries), the task's span from its state
function timeline (flow) {
    const rows = [];
    for (const step of flow.steps) {
        if (step.items)
            for (const item of step.items)
                rows.push ({name: taskName (step.id, item.item), ...item});
        else
            rows.push ({name: step.id, ...step});
    }
    const tries = flow.tries || [];
    const triesOf = new Map ();
    for (const t of tries) {
        const name = taskName (t.step, t.item);
        if (!triesOf.has (name))
            triesOf.set (name, []);
        triesOf.get (name).push (t);
    }
    const times = rows.flatMap ((r) => [r.started, r.finished])
                      .concat (tries.flatMap ((t) => [t.sent, t.finished])).filter ((t) => t);
    const start = Math.min (flow.started, ...times);
    const end = Math.max (flow.finished || Date.now (), ...times, start + 1);
    const span = end - start;
    const bar = (from, to, css, title) => h ('span', {
        class: 'bar ' + css, title,
        style: `left:${(from - start) / span * 100}%;` +
               `width:${Math.max (0.3, (to - from) / span * 100)}%`});
    const chart = rows.map ((row) => {
        const from = row.started || 0;
        const to = row.finished || (row.started ? end : 0);
        const mine = triesOf.get (row.name) || [];
        const error = row.error ? ' — ' + (row.error.code || '') + ': ' + (row.error.message || '')
                                : '';
        //  Its tries, or, for tasks that send no command (sleep, await, a
        //  sub-flow) and tries no longer traced, its span
        const bars = mine.length ?
            mine.map ((t) => bar (t.sent, t.finished, 'try o-' + t.outcome + (t.undo ? ' undo' : ''),
                                  (t.undo ? 'undo ' : '') + 'try ' + t.attempt + ': ' + t.outcome +
                                  ', ' + took (t.sent, t.finished))) :
            from ? [bar (from, to, 's-' + row.state, row.state)] : [];
        return h ('div', {class: 'row', 'data-step': row.name},
                  h ('span', {class: 'name'}, row.name),
                  h ('span', {class: 'track'}, bars),
                  h ('span', {class: 'info', title: error},
                     row.state + (row.attempts ? ', try ' + row.attempts : '') +
                     (from && row.finished ? ', ' + took (from, row.finished) : '') + error));
    });
    const omitted = Object.entries (flow.tries_omitted || {});
    const table = h ('table', {id: 'tries'},
        h ('tr', {}, ['Task', 'Try', 'Service', 'Started', 'Finished', 'Took', 'Outcome', 'Error']
                     .map ((name) => h ('th', {}, name))),
        tries.map ((t) => h ('tr', {class: 'try', 'data-task': taskName (t.step, t.item),
                                   'data-attempt': t.attempt, 'data-outcome': t.outcome},
            h ('td', {}, taskName (t.step, t.item) + (t.run > 1 ? ' (run ' + t.run + ')' : '') +
                         (t.undo ? ' (undo)' : '')),
            h ('td', {}, t.attempt),
            h ('td', {}, t.service + ' ' + t.command),
            h ('td', {}, when (t.sent)), h ('td', {}, when (t.finished)),
            h ('td', {}, took (t.sent, t.finished) || '0 ms'),
            h ('td', {}, h ('span', {class: 'outcome o-' + t.outcome}, t.outcome)),
            h ('td', {class: 'error'}, t.error ? t.error.code + ': ' + t.error.message : ''))));
    return [h ('div', {class: 'timeline', id: 'timeline'}, chart),
            h ('p', {class: 'legend'}, tries.length + ' tries',
              omitted.length ? ' (older ones left out: ' +
                  omitted.map (([task, n]) => task + ' ' + n).join (', ') + ')' : '',
              flow.tries_off_page ? ', and ' + flow.tries_off_page +
                                    ' of items on other pages of their step' : '',
              flow.tries_error ? h ('span', {class: 'error'}, ' — tries unreadable: ' +
                                             flow.tries_error) : ''),
            table];
}

function itemsOf (step, onmore) {
    if (!step || !step.items)
        return null;
    return h ('div', {class: 'items', id: 'items-' + step.id},
              h ('h2', {}, 'Items of ' + step.id + ' (' + stepSummary (step) + ')'),
              h ('table', {}, h ('tr', {}, ['Item', 'State', 'Tries', 'Took', 'Error', 'Output']
                                           .map ((name) => h ('th', {}, name))),
                 step.items.map ((item) => h ('tr', {},
                     h ('td', {}, item.item), h ('td', {}, stateBadge (item.state)),
                     h ('td', {}, item.attempts), h ('td', {}, took (item.started, item.finished)),
                     h ('td', {}, item.error ? item.error.code + ': ' + item.error.message : ''),
                     h ('td', {}, item.output === undefined || item.output === null ? ''
                                  : JSON.stringify (item.output).slice (0, 120))))),
              step.items_from + step.items.length < step.items_total ?
                  h ('button', {onclick: onmore}, 'Next items') : null);
}

async function flowPage (id) {
    let picked = null;
    let from = 0;
    const render = async () => {
        const query = from ? `?from=${from}&to=${from + 99}` : '';
        const flow = await api ('flows/' + encodeURIComponent (id) + query);
        const act = async (action, body) => {
            try {
                const result = await api ('flows/' + encodeURIComponent (id) + '/' + action,
                                          body || {});
                statusLine.textContent = action + ': ' + id + ' is ' + result.state;
            }
            catch (error) {
                statusLine.textContent = action + ' refused: ' + error.message;
            }
            await render ();
        };
        const running = flow.state === 'running';
        const retryable = ['failed', 'cancelled', 'stuck'].includes (flow.state);
        const signalName = h ('input', {name: 'signal', placeholder: 'signal name', size: 14});
        const signalPayload = h ('input', {name: 'payload', placeholder: 'JSON payload', size: 24});
        const pickedStep = flow.steps.find ((step) => step.id === picked);
        show (h ('h1', {}, flow.id, ' ', stateBadge (flow.state)),
              h ('p', {}, 'Flow ', h ('a', {href: '#/flows?flow=' + encodeURIComponent (flow.flow)},
                                      flow.flow), ' version ' + flow.version,
                 flow.key !== null ? ', key ' + flow.key : '',
                 ', started ' + when (flow.started),
                 flow.finished ? ', finished ' + when (flow.finished) + ' (' +
                                 took (flow.started, flow.finished) + ')' : ''),
              flow.error ? h ('p', {class: 'error', id: 'flow-error'},
                              (flow.error.step ? 'step ' + flow.error.step + ': ' : '') +
                              flow.error.code + ': ' + flow.error.message) : null,
              h ('div', {class: 'actions'},
                 h ('button', {id: 'cancel', disabled: !running, onclick: () => act ('cancel')},
                    'Cancel'),
                 h ('button', {id: 'retry', disabled: !retryable, onclick: () => act ('retry')},
                    'Retry'),
                 signalName, signalPayload,
                 h ('button', {id: 'signal', disabled: !running, onclick: () => {
                     let payload = null;
                     try {
                         payload = signalPayload.value.trim () ?
                                   JSON.parse (signalPayload.value) : null;
                     }
                     catch (error) {
                         statusLine.textContent = 'the payload is not JSON: ' + error.message;
                         return;
                     }
                     act ('signal', {name: signalName.value.trim (), payload});
                 }}, 'Signal')),
              h ('h2', {}, 'Steps'),
              h ('p', {class: 'legend'}, ['pending', 'running', 'waiting', 'done', 'failed',
                                          'undone', 'skipped'].map ((s) => stateBadge (s))),
              dag (flow, (step) => { picked = step; from = 0; render ().catch (failure); }),
              itemsOf (pickedStep, () => { from += 100; render ().catch (failure); }),
              h ('h2', {}, 'Tries'), timeline (flow),
              h ('h2', {}, 'Input'), pretty (flow.input),
              h ('h2', {}, 'Output'), pretty (flow.output),
              pickedStep && !pickedStep.items ?
                  [h ('h2', {}, 'Output of ' + picked), pretty (pickedStep.output)] : null,
              flow.received ? [h ('h2', {}, 'Events and signals received'),
                               pretty (flow.received)] : null);
    };
    await render ();
    //  The page follows the flow as it runs, without a reload
    const timer = setInterval (() => {
        if (!document.hidden)
            render ().catch (() => {});
    }, 1500);
    leave = () => clearInterval (timer);
}

//  --------------------------------------------------------------------------
//  Bulk actions: on every flow a filter selects, after a typed confirmation

async function bulkPage (params) {
    const filter = {};
    for (const name of FILTERS)
        if (params.get (name))
            filter [name] = ['version', 'since', 'until'].includes (name) ?
                            +params.get (name) : params.get (name);
    const list = await api ('flows?' + new URLSearchParams ([...params, ['limit', '1']]));
    const action = h ('select', {name: 'action'}, h ('option', {value: 'retry'}, 'retry'),
                      h ('option', {value: 'cancel'}, 'cancel'));
    const confirm = h ('input', {name: 'confirm', size: 16, placeholder: 'type it here'});
    const results = h ('div', {id: 'bulk-results'});
    const phrase = () => action.value + ' ' + list.total;
    const hint = h ('span', {id: 'bulk-phrase'}, phrase ());
    action.addEventListener ('change', () => { hint.textContent = phrase (); });
    show (h ('h1', {}, 'Bulk actions'),
          filterForm (params, (out) => { location.hash = '#/bulk?' + out; }),
          h ('p', {id: 'bulk-selected'}, list.total + ' flows selected by ' +
             (Object.keys (filter).length ? JSON.stringify (filter) : 'no filter (all flows)')),
          h ('div', {class: 'bulk'}, h ('label', {}, 'Action', action),
             h ('label', {}, ['Type ', hint, ' to confirm'], confirm),
             h ('button', {id: 'bulk-go', onclick: async () => {
                 if (confirm.value.trim () !== phrase ()) {
                     statusLine.textContent = 'type "' + phrase () + '" to confirm';
                     return;
                 }
                 try {
                     const answer = await api ('bulk', {action: action.value, filter});
                     statusLine.textContent = answer.action + ': ' + answer.done + ' done, ' +
                                              answer.failed + ' refused';
                     results.replaceChildren (
                         h ('p', {id: 'bulk-summary'}, answer.results.length + ' results: ' +
                            answer.done + ' done, ' + answer.failed + ' refused'),
                         h ('table', {}, answer.results.map ((r) => h ('tr', {class: 'result'},
                             h ('td', {}, h ('a', {href: '#/flow/' + encodeURIComponent (r.id)},
                                             r.id)),
                             h ('td', {}, r.ok ? stateBadge (r.state)
                                               : r.error.code + ': ' + r.error.message)))));
                 }
                 catch (error) {
                     statusLine.textContent = 'bulk action refused: ' + error.message;
                 }
             }}, 'Do it')),
          results);
}

//  --------------------------------------------------------------------------
//  Trace: the causal tree of a correlation id

//  An event, or a try of a command the coordinator sent, and what it caused
function traceNode (node) {
    const kids = node.children.length ? h ('ul', {class: 'tree'}, node.children.map (traceNode))
                                      : null;
    if (node.kind === 'command')
        return h ('li', {class: 'command', 'data-command': node.id, 'data-outcome': node.outcome},
                  'command ', h ('code', {}, node.service + ' ' + node.command),
                  ' try ' + node.attempt + ' for ',
                  h ('a', {href: '#/flow/' + encodeURIComponent (node.flow)}, node.flow),
                  ' at ', when (node.sent), ': ',
                  h ('span', {class: 'outcome o-' + node.outcome}, node.outcome),
                  ' in ' + (took (node.sent, node.finished) || '0 ms'),
                  node.error ? h ('span', {class: 'error'}, ' ' + node.error.code + ': ' +
                                                             node.error.message) : '',
                  ' ', h ('small', {}, node.id), kids);
    return h ('li', {class: 'event', 'data-event': node.id},
              h ('code', {}, node.topic), ' from ', node.service, ' (', node.instance, ') at ',
              when (node.time), ' ', h ('small', {}, node.id), kids);
}

async function tracePage (id) {
    const input = h ('input', {name: 'correlation', size: 40, value: id || ''});
    const form = h ('form', {class: 'filters', onsubmit: (event) => {
        event.preventDefault ();
        location.hash = '#/trace/' + encodeURIComponent (input.value.trim ());
    }}, h ('label', {}, 'Correlation id', input), h ('button', {type: 'submit'}, 'Show'));
    if (!id)
        return show (h ('h1', {}, 'Trace'), form);
    const trace = await api ('trace/' + encodeURIComponent (id));
    show (h ('h1', {}, 'Trace ' + id), form,
          h ('p', {id: 'trace-count'}, trace.events.length + ' events, ' +
             (trace.commands || []).length + ' commands the coordinator sent'),
          h ('ul', {class: 'tree', id: 'trace-tree'}, trace.tree.map (traceNode)));
}

//  --------------------------------------------------------------------------
//  Live tail: Server-Sent Events read with fetch (so that it carries the
//  token), resumed after a break with Last-Event-ID

function tailPage (params) {
    const topic = params.get ('topic') || '';
    const list = h ('div', {id: 'tail-events'});
    const state = h ('span', {id: 'tail-state'}, 'connecting');
    const input = h ('input', {name: 'topic', value: topic, size: 24,
                               placeholder: 'topic prefix'});
    show (h ('h1', {}, 'Live tail'),
          h ('form', {class: 'filters', onsubmit: (event) => {
              event.preventDefault ();
              location.hash = '#/tail?topic=' + encodeURIComponent (input.value.trim ());
          }}, h ('label', {}, 'Topic starts with', input), h ('button', {type: 'submit'}, 'Follow'),
             state),
          list);
    const controller = new AbortController ();
    let lastId = null;
    let stopped = false;
    const add = (node) => {
        list.prepend (node);
        while (list.childNodes.length > 500)
            list.lastChild.remove ();
    };
    const onEvent = (type, data) => {
        if (type === 'missed') {
            const what = JSON.parse (data);
            add (h ('div', {class: 'notice missed'}, 'missed ' +
                    (what.missed === null ? 'events' : what.missed + ' events') +
                    ': ' + what.reason));
            return;
        }
        const event = JSON.parse (data);
        add (h ('div', {class: 'event', 'data-topic': event.topic, 'data-time': event.time},
                when (event.time), ' ', h ('b', {}, event.topic), ' ', event.service, ' ',
                event.correlation ? h ('a', {href: '#/trace/' +
                                             encodeURIComponent (event.correlation)}, 'trace')
                                  : '', ' ', JSON.stringify (event.payload).slice (0, 200)));
    };
    const follow = async () => {
        while (!stopped) {
            try {
                const extra = lastId ? {'Last-Event-ID': lastId} : {};
                const response = await fetch ('/api/tail' + (topic ? '?topic=' +
                                              encodeURIComponent (topic) : ''),
                                              {headers: Object.assign (headers (false), extra),
                                               signal: controller.signal});
                if (response.status === 401)
                    return askToken ();
                state.textContent = 'following';
                const reader = response.body.getReader ();
                const decoder = new TextDecoder ();
                let buffer = '';
                while (true) {
                    const {value, done} = await reader.read ();
                    if (done)
                        break;
                    buffer += decoder.decode (value, {stream: true});
                    let end;
                    while ((end = buffer.indexOf ('\n\n')) >= 0) {
                        const block = buffer.slice (0, end);
                        buffer = buffer.slice (end + 2);
                        let type = 'message', data = '', id = null;
                        for (const line of block.split ('\n')) {
                            if (line.startsWith ('event: '))
                                type = line.slice (7);
                            else if (line.startsWith ('data: '))
                                data += line.slice (6);
                            else if (line.startsWith ('id: '))
                                id = line.slice (4);
                        }
                        if (id)
                            lastId = id;
                        if (data)
                            onEvent (type, data);
                    }
                }
            }
            catch (error) {
                if (stopped)
                    return;
            }
            state.textContent = 'reconnecting';
            await new Promise ((resolve) => setTimeout (resolve, 1000));
        }
    };
    follow ();
    leave = () => { stopped = true; controller.abort (); };
}

//  --------------------------------------------------------------------------

async function route () {
    if (leave)
        leave ();
    leave = null;
    const hash = location.hash.slice (1) || '/flows';
    const [path, query] = hash.split ('?');
    const params = new URLSearchParams (query || '');
    const parts = path.split ('/').slice (1).map (decodeURIComponent);
    try {
        if (parts [0] === 'flow' && parts [1])
            await flowPage (parts.slice (1).join ('/'));
        else if (parts [0] === 'bulk')
            await bulkPage (params);
        else if (parts [0] === 'trace')
            await tracePage (parts [1]);
        else if (parts [0] === 'tail')
            tailPage (params);
        else
            await flowsPage (params);
    }
    catch (error) {
        failure (error);
    }
}

window.addEventListener ('hashchange', route);
route ();

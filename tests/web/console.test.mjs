//  The console's pages in Debian's chromium, driven by playwright-core
//  (never a downloaded browser), against a real coordinator and shop
//  service on loopback (tests/console.py): the list shows the flows and
//  filters them by state and key, a failed flow's page draws its DAG with
//  the failed step marked and lists its tries, its Retry button makes it
//  run again and the page follows without a reload (its timeline keeping
//  the tries of both runs), a bulk retry of 20 failed flows reports 20
//  results, the live tail shows a new event within 2 s, the trace page
//  shows a transaction's tree with the commands the coordinator sent, and
//  a console with a token asks for it.
//  Run by tests/test_console_pages.sh.
import {after, before, test} from 'node:test';
import assert from 'node:assert/strict';
import {spawn, spawnSync} from 'node:child_process';
import {createRequire} from 'node:module';
import {once} from 'node:events';
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';

const require = createRequire (path.join (process.env.CHORUS_WEB_DIR, 'package.json'));
const {chromium} = require ('playwright-core');
const top = process.env.top_builddir;
const srcdir = process.env.srcdir;

let mesh, info, browser, page, whyNot;

//  Publishes JSON values as events of topic, one per line, and waits
//  until the mesh has them
function publish (topic, values, correlation) {
    const args = ['publish', topic, '--lines', '--settle', '300', '--store',
                  path.join (info.tmp, 'pub-' + Date.now () + '-' + Math.random ())];
    if (correlation)
        args.push ('--correlation', correlation);
    const result = spawnSync (path.join (top, 'tools', 'chorus'), args, {
        input: values.map ((v) => JSON.stringify (v) + '\n').join (''),
        env: Object.assign ({}, process.env, {CHORUS_SEEDS: info.seeds, CHORUS_MESH: info.mesh}),
        timeout: 30000});
    assert.equal (result.status, 0, 'chorus publish: ' + result.stderr);
}

async function api (route) {
    const response = await fetch (info.url + '/api/' + route);
    return response.json ();
}

async function until (what, timeout) {
    const end = Date.now () + timeout;
    for (;;) {
        const value = await what ();
        if (value || Date.now () > end)
            return value;
        await new Promise ((resolve) => setTimeout (resolve, 100));
    }
}

before (async () => {
    //  Chromium starts (a few seconds) while the mesh runs the flows
    const launching = chromium.launch ({executablePath: '/usr/bin/chromium'})
        .catch ((error) => { whyNot = 'chromium cannot start: ' +
                                      String (error.message).split ('\n') [0]; });
    mesh = spawn ('/usr/bin/python3', [path.join (srcdir, 'tests', 'console.py')], {
        stdio: ['pipe', 'pipe', 'inherit'],
        env: Object.assign ({}, process.env, {PYTHONPATH: path.join (srcdir, 'tests', 'peer')})});
    const lines = readline.createInterface ({input: mesh.stdout});
    const [line] = await once (lines, 'line');
    info = JSON.parse (line);
    //  Two orders that complete, one that fails (retried from its page) and
    //  20 that fail (retried in bulk)
    const orders = [{order: 'G1', parcels: [1, 2, 3]}, {order: 'G2', parcels: [1]},
                    {order: 'S1', fail: true, parcels: [1]}];
    for (let i = 1; i <= 20; i++)
        orders.push ({order: 'B' + String (i).padStart (2, '0'), fail: true, parcels: []});
    publish ('order.placed', orders, 'web-orders');
    const settled = await until (async () => (await api ('flows?state=failed')).total === 21
                                          && (await api ('flows?state=completed')).total === 2,
                                 20000);
    assert.ok (settled, 'the 23 flows ran');
    browser = await launching;
    if (browser)
        page = await browser.newPage ();
});

after (async () => {
    if (browser)
        await browser.close ();
    if (mesh) {
        mesh.stdin.end ();
        await once (mesh, 'exit');
    }
});

test ('the list shows the started flows, and filters them by state and key', async (t) => {
    if (whyNot)
        return t.skip (whyNot);
    await page.goto (info.url + '/#/flows');
    await page.waitForSelector ('#flows tbody tr');
    assert.equal (await page.locator ('#flows tbody tr').count (), 23);
    await page.selectOption ('select[name=state]', 'completed');
    await page.click ('form.filters button[type=submit]');
    await page.waitForFunction (() => document.querySelectorAll ('#flows tbody tr').length === 2);
    await page.fill ('input[name=q]', 'G2');
    await page.click ('form.filters button[type=submit]');
    await page.waitForFunction (() => document.querySelectorAll ('#flows tbody tr').length === 1);
    assert.match (await page.locator ('#flows tbody tr').innerText (), /G2/);
    await page.selectOption ('select[name=state]', 'failed');
    await page.click ('form.filters button[type=submit]');
    await page.waitForSelector ('#flows-total:text("0 flows")');
});

test ("a failed flow's page draws its DAG with the failed step marked", async (t) => {
    if (whyNot)
        return t.skip (whyNot);
    const id = (await api ('flows?q=S1')).flows [0].id;
    await page.goto (info.url + '/#/flow/' + encodeURIComponent (id));
    await page.waitForSelector ('svg.dag g.step[data-step=charge]');
    assert.equal (await page.getAttribute ('g.step[data-step=charge]', 'data-state'), 'failed');
    assert.equal (await page.getAttribute ('g.step[data-step=reserve]', 'data-state'), 'undone');
    assert.equal (await page.getAttribute ('g.step[data-step=ship]', 'data-state'), 'pending');
    assert.equal (await page.locator ('svg.dag path.edge').count (), 2, 'reserve→charge→ship');
    assert.match (await page.innerText ('#flow-error'), /card declined/);
    assert.match (await page.innerText ('#timeline'), /charge.*failed/s);
    //  Its tries: a bar each on the timeline, and a row each in the table
    await page.waitForSelector ('#timeline .row[data-step=charge] .bar.try.o-error');
    const tried = page.locator ('#tries tr.try[data-task=charge]');
    assert.equal (await tried.count (), 1);
    assert.equal (await tried.getAttribute ('data-outcome'), 'error');
    assert.match (await tried.innerText (), /shop charge.*error.*card declined/s);
    assert.match (await page.innerText ('#tries'), /reserve \(undo\)/, 'and the compensation');
});

test ('its Retry button makes it run again, and the page follows without a reload',
      async (t) => {
    if (whyNot)
        return t.skip (whyNot);
    fs.writeFileSync (info.fixed, '');
    await page.evaluate (() => { window.notReloaded = true; });
    await page.click ('#retry');
    await page.waitForSelector ('h1 [data-state=completed]', {timeout: 15000});
    assert.equal (await page.getAttribute ('g.step[data-step=charge]', 'data-state'), 'done');
    assert.equal (await page.evaluate (() => window.notReloaded), true, 'no reload');
    assert.equal (await page.isDisabled ('#retry'), true, 'nothing left to retry');
    //  The timeline keeps the failed try beside the one that succeeded
    await page.waitForSelector ('#tries tr.try[data-task=charge][data-outcome=done]');
    const outcomes = await page.locator ('#tries tr.try[data-task=charge]').evaluateAll (
        (rows) => rows.map ((row) => row.dataset.outcome));
    assert.deepEqual (outcomes, ['error', 'done'], 'both tries of charge, in order');
    assert.equal (await page.locator ('#timeline .row[data-step=charge] .bar.try').count (), 2);
    assert.match (await page.innerText ('#tries tr.try[data-outcome=done][data-task=charge]'),
                  /run 2/);
});

test ('a bulk retry of 20 failed flows, after its typed confirmation, reports 20 results',
      async (t) => {
    if (whyNot)
        return t.skip (whyNot);
    await page.goto (info.url + '/#/bulk?state=failed');
    await page.waitForSelector ('#bulk-selected:text("20 flows selected")');
    await page.fill ('input[name=confirm]', 'retry 2');
    await page.click ('#bulk-go');
    await page.waitForSelector ('#status:text("to confirm")');
    assert.equal (await page.locator ('#bulk-results tr').count (), 0, 'a wrong phrase does nothing');
    await page.fill ('input[name=confirm]', 'retry 20');
    await page.click ('#bulk-go');
    await page.waitForSelector ('#bulk-summary');
    assert.match (await page.innerText ('#bulk-summary'), /^20 results: 20 done/);
    assert.equal (await page.locator ('#bulk-results tr.result').count (), 20);
    assert.ok (await until (async () => (await api ('flows?state=completed')).total === 23, 15000),
               'and the 20 complete');
});

test ('the live tail shows a newly published event within 2 s', async (t) => {
    if (whyNot)
        return t.skip (whyNot);
    await page.goto (info.url + '/#/tail?topic=order.placed');
    await page.waitForSelector ('#tail-state:text("following")');
    publish ('order.placed', [{order: 'L1', parcels: []}], 'web-live');
    const row = page.locator ('#tail-events .event[data-topic="order.placed"]');
    await row.first ().waitFor ({timeout: 5000});
    const shown = Date.now ();
    const published = +(await row.first ().getAttribute ('data-time'));
    assert.ok (shown - published < 2000, `shown ${shown - published} ms after it was published`);
    assert.match (await row.first ().innerText (), /L1/);
});

test ('the trace page shows the tree of a transaction', async (t) => {
    if (whyNot)
        return t.skip (whyNot);
    assert.ok (await until (async () => (await api ('trace/web-live')).events.length === 2,
                            10000), 'the flow of the event completed');
    await page.goto (info.url + '/#/trace/web-live');
    await page.waitForSelector ('#trace-tree > li');
    const root = page.locator ('#trace-tree > li');
    assert.equal (await root.count (), 1);
    assert.match (await root.locator ('> code').innerText (), /^order\.placed$/);
    await page.waitForSelector ('#trace-tree > li > ul > li > code:text("order.done")');
    //  The commands the coordinator sent for the flow, under the same event
    const sent = root.locator ('> ul > li.command');
    assert.equal (await sent.count (), 2, 'reserve and charge (no parcel to ship)');
    assert.match (await sent.nth (0).innerText (), /shop reserve try 1 for .*done/);
    assert.match (await sent.nth (1).innerText (), /shop charge try 1 for .*done/);
    assert.match (await page.innerText ('#trace-count'), /^2 events, 2 commands/);
});

test ('a console with --http-token asks for the token, then shows the flows', async (t) => {
    if (whyNot)
        return t.skip (whyNot);
    const token = 'a-browser-test-token-of-some-length';
    const guarded = spawn ('/usr/bin/python3', [path.join (srcdir, 'tests', 'console.py')], {
        stdio: ['pipe', 'pipe', 'inherit'],
        env: Object.assign ({}, process.env, {CONSOLE_TOKEN: token,
                                              PYTHONPATH: path.join (srcdir, 'tests', 'peer')})});
    try {
        const [line] = await once (readline.createInterface ({input: guarded.stdout}), 'line');
        const url = JSON.parse (line).url;
        const fresh = await browser.newPage ();
        await fresh.goto (url + '/#/flows');
        await fresh.waitForSelector ('input[name=token]');
        await fresh.fill ('input[name=token]', 'not-' + token);
        await Promise.all ([fresh.waitForResponse ((r) => r.url ().includes ('/api/flows')
                                                          && r.status () === 401),
                            fresh.click ('button[type=submit]')]);
        await fresh.waitForSelector ('input[name=token]');
        assert.equal (await fresh.locator ('#flows').count (), 0, 'a wrong token shows nothing');
        await fresh.fill ('input[name=token]', token);
        await fresh.click ('button[type=submit]');
        await fresh.waitForSelector ('#flows-total:text("0 flows")');
        await fresh.close ();
    }
    finally {
        guarded.stdin.end ();
        await once (guarded, 'exit');
    }
});

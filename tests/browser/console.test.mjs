// The admin console in Debian's Chromium against the real server: sign-in, sessions made over
// SOAP seen and ended in the browser, rights, CSRF, sign-out, lock-out and paging. Each test
// leaves a screenshot in output/.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';

import {
  startServer,
  openBrowser,
  signIn,
  screenshot,
  getSession,
  validateSession,
  soap,
  faultCode,
  csrfOf,
  postFromPage,
} from './helpers.mjs';

let server;

before(async () => {
  server = await startServer();
  server.addUser('viewer', 'viewer-password', ['ViewSessionRight']);
  server.addUser('worker', 'worker-password');
});

after(async () => {
  await server?.stop();
});

async function withBrowser(fn) {
  const b = await openBrowser();
  try {
    await fn(b.page, b.context);
  } finally {
    await b.close();
  }
}

test('an operator signs in and sees the overview with counts, chart and ended sessions', async () => {
  await withBrowser(async (page) => {
    await getSession(server, 'worker', 'worker-password');
    await soap(server, 'getSession', { userId: 'worker', password: 'wrong' });
    await signIn(page, server, 'ops', 'ops-password');
    await page.waitForURL(server.console);
    await assert.doesNotReject(page.getByRole('heading', { name: 'Overview' }).waitFor());
    const chart = page.getByRole('img', { name: /Logins and failures per minute/ });
    assert.equal(await chart.count(), 1);
    // The per-instance counts saw the SOAP login, its failure and this sign-in.
    assert.match(await page.locator('main').innerText(), /answered [2-9]\d* logins and [1-9]\d* failed logins/);
    const byType = page.getByRole('table').filter({ hasText: 'Client type' }).first();
    assert.match(await byType.innerText(), /standard/);
    assert.match(await byType.innerText(), /console/);
    assert.equal(await page.getByRole('button', { name: 'Sign out' }).count(), 1);
    await screenshot(page, 'overview');
  });
});

test('a session created over SOAP is listed, ended in the browser, and then invalid over SOAP', async () => {
  await withBrowser(async (page) => {
    const id = await getSession(server, 'worker', 'worker-password');
    assert.equal(await validateSession(server, id), 'true');
    await signIn(page, server, 'ops', 'ops-password');
    await page.goto(`${server.console}sessions?user=worker`);
    const link = page.locator(`a[href$="/sessions/${id}"]`);
    assert.equal(await link.count(), 1, 'the SOAP session is in the list');
    const row = page.getByRole('row').filter({ has: link });
    assert.equal(await row.getByRole('button', { name: 'End session' }).count(), 1);
    await screenshot(page, 'sessions-list');

    await link.click();
    await page.getByRole('heading', { name: /^Session / }).waitFor();
    assert.match(await page.locator('main').innerText(), new RegExp(id));
    assert.equal(await page.getByRole('button', { name: 'End all sessions of this user' }).count(), 1);
    await screenshot(page, 'session-detail');

    await page.getByRole('button', { name: 'End session', exact: true }).click();
    await page.getByRole('status').waitFor();
    assert.match(await page.getByRole('status').innerText(), /The session was ended/);
    assert.match(await page.locator('main').innerText(), /reason\s+deleted/);
    assert.equal(await validateSession(server, id), 'false');
    await screenshot(page, 'session-ended');
  });
});

test('ending all sessions of a user from the detail page ends every one of them', async () => {
  await withBrowser(async (page) => {
    const ids = [];
    for (let i = 0; i < 3; i++) ids.push(await getSession(server, 'worker', 'worker-password'));
    await signIn(page, server, 'ops', 'ops-password');
    await page.goto(`${server.console}sessions/${ids[0]}`);
    await page.getByRole('button', { name: 'End all sessions of this user' }).click();
    await page.getByRole('status').waitFor();
    assert.match(await page.getByRole('status').innerText(), /Ended [3-9]\d* sessions of the user/);
    for (const id of ids) assert.equal(await validateSession(server, id), 'false');
  });
});

test('a view-only user sees no End session button and a forged end is refused with 403', async () => {
  await withBrowser(async (page) => {
    const id = await getSession(server, 'worker', 'worker-password');
    await signIn(page, server, 'viewer', 'viewer-password');
    await page.goto(`${server.console}sessions?user=worker`);
    assert.equal(await page.locator(`a[href$="/sessions/${id}"]`).count(), 1);
    assert.equal(await page.getByRole('button', { name: 'End session' }).count(), 0);
    assert.equal(await page.getByRole('button', { name: 'Remove expired sessions' }).count(), 0);
    assert.equal(await page.getByRole('link', { name: 'Users' }).count(), 0);
    await page.goto(`${server.console}sessions/${id}`);
    assert.equal(await page.getByRole('button', { name: 'End session' }).count(), 0);
    assert.equal(await page.getByRole('button', { name: 'End all sessions of this user' }).count(), 0);
    await screenshot(page, 'view-only-detail');

    // The viewer's own, valid token: the right is missing, not the token.
    const csrf = await csrfOf(page);
    const status = await postFromPage(page, `${server.console}sessions/${id}/end`, { csrf });
    assert.equal(status, 403);
    const users = await postFromPage(page, `${server.console}users/change`, {
      csrf,
      user: 'worker',
      action: 'disable',
    });
    assert.equal(users, 403);
    assert.equal(await validateSession(server, id), 'true', 'the forged POST changed nothing');
    assert.match(server.log(), /console: viewer .* was refused ending a session: lacks the right/);
    const page403 = await page.goto(`${server.console}users`);
    assert.equal(page403.status(), 403);
  });
});

test('a POST without a CSRF token, or with another session\'s, is refused with 403', async () => {
  await withBrowser(async (page, context) => {
    const id = await getSession(server, 'worker', 'worker-password');
    await signIn(page, server, 'ops', 'ops-password');
    await page.goto(`${server.console}sessions`);
    assert.equal(await postFromPage(page, `${server.console}sessions/${id}/end`, {}), 403);

    // A second console session of the same user: its token is not this one's.
    const other = await openBrowser();
    let foreign;
    try {
      await signIn(other.page, server, 'ops', 'ops-password');
      await other.page.waitForURL(server.console);
      foreign = await csrfOf(other.page);
    } finally {
      await other.close();
    }
    assert.notEqual(foreign, await csrfOf(page));
    const status = await postFromPage(page, `${server.console}sessions/${id}/end`, { csrf: foreign });
    assert.equal(status, 403);
    assert.equal(await validateSession(server, id), 'true', 'nothing was ended');
    await screenshot(page, 'csrf-refused-page');
    assert.ok((await context.cookies()).some((c) => c.name === 'sessiond_console'));
  });
});

test('sign-out ends the console session and its cookie no longer opens a page', async () => {
  await withBrowser(async (page, context) => {
    await signIn(page, server, 'ops', 'ops-password');
    await page.waitForURL(server.console);
    const cookie = (await context.cookies()).find((c) => c.name === 'sessiond_console');
    assert.ok(cookie, 'signed in with a cookie');
    assert.equal(cookie.httpOnly, true);
    assert.equal(cookie.sameSite, 'Strict');
    assert.equal(cookie.path, '/admin/');
    assert.equal(await validateSession(server, cookie.value), 'true');

    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByRole('button', { name: 'Sign in' }).waitFor();
    assert.match(await page.getByRole('status').innerText(), /signed out/);
    await screenshot(page, 'signed-out');

    const r = await fetch(`${server.console}sessions`, {
      headers: { Cookie: `sessiond_console=${cookie.value}` },
      redirect: 'manual',
    });
    assert.equal(r.status, 303);
    assert.match(r.headers.get('location'), /sign-in$/);
    assert.equal(await validateSession(server, cookie.value), 'false');
  });
});

test('five wrong passwords lock the account and the sixth, right one is refused as locked', async () => {
  server.addUser('careless', 'careless-password', ['ViewSessionRight']);
  await withBrowser(async (page) => {
    for (let i = 0; i < 5; i++) {
      await signIn(page, server, 'careless', `wrong-${i}`);
      await page.getByRole('alert').waitFor();
      assert.match(await page.getByRole('alert').innerText(), /Sign-in failed/);
    }
    await signIn(page, server, 'careless', 'careless-password');
    await page.getByRole('alert').waitFor();
    assert.match(await page.getByRole('alert').innerText(), /locked/);
    await screenshot(page, 'locked');
    // The same lock over SOAP: one lock-out for both doors.
    const r = await soap(server, 'getSession', { userId: 'careless', password: 'careless-password' });
    assert.equal(faultCode(r.text), 'ACCOUNT_LOCKED');
  });
});

test('a user without any right cannot sign in, with the same message as a wrong password', async () => {
  await withBrowser(async (page) => {
    await signIn(page, server, 'worker', 'worker-password');
    await page.getByRole('alert').waitFor();
    assert.match(await page.getByRole('alert').innerText(), /Sign-in failed: unknown user, wrong password/);
  });
});

test('paging through 10,000 sessions shows each once, forwards and back', async () => {
  server.addUser('bulk', 'bulk-password');
  // Straight into the database: 10,000 logins through Argon2 would take minutes.
  server.sql(`
    WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 10000)
    INSERT INTO sessions (session_id, user_id, client_type, client_name, host, location,
                          created_at, created_by)
    SELECT printf('bulk%06d', i), 'bulk', 'bw', 'loader', '127.0.0.1', 'browser-test',
           strftime('%Y-%m-%d %H:%M:%f', 'now', printf('-%d seconds', 10000 - i)), NULL
    FROM n;
    INSERT INTO session_activity (session_id, last_activity)
    SELECT session_id, strftime('%Y-%m-%d %H:%M:%f', 'now') FROM sessions
    WHERE session_id LIKE 'bulk%';`);
  await withBrowser(async (page) => {
    await signIn(page, server, 'ops', 'ops-password');
    await page.goto(`${server.console}sessions?user=bulk&sort=created&order=asc&size=500`);
    assert.match(await page.locator('#total').innerText(), /^Matching sessions: 10,000; 500 on this page/);
    await screenshot(page, 'paging-first', false);
    const seen = new Set();
    const firsts = [];
    const idsOnPage = () =>
      page
        .locator('table.sessions tbody th a')
        .evaluateAll((as) => as.map((a) => a.getAttribute('href').split('/').pop()));
    for (;;) {
      const ids = await idsOnPage();
      firsts.push(ids[0]);
      for (const id of ids) {
        assert.ok(!seen.has(id), `${id} shown twice`);
        seen.add(id);
      }
      const next = page.getByRole('link', { name: 'Next page' });
      if ((await next.count()) === 0) break;
      await next.click();
      await page.waitForLoadState();
    }
    assert.equal(firsts.length, 20);
    assert.equal(seen.size, 10000);
    assert.equal(firsts[0], 'bulk000001');
    assert.ok(seen.has('bulk010000'));
    await screenshot(page, 'paging-last', false);
    // Back from the last page: the pages before it, in order, then the first page.
    for (let back = 2; back <= 4; back++) {
      await page.getByRole('link', { name: 'Previous page' }).click();
      await page.waitForLoadState();
      assert.equal((await idsOnPage())[0], firsts[firsts.length - back]);
    }
    await page.getByRole('link', { name: 'First page' }).click();
    await page.waitForLoadState();
    assert.equal((await idsOnPage())[0], 'bulk000001');
    assert.equal(await page.getByRole('link', { name: 'Previous page' }).count(), 0);
  });
});

test('at 200% zoom the pages reflow: no page-wide horizontal scrolling', async () => {
  await withBrowser(async (page) => {
    // 200 % zoom of a 1280 px window is a 640 px wide layout at twice the pixels.
    await page.setViewportSize({ width: 640, height: 800 });
    await signIn(page, server, 'ops', 'ops-password');
    await page.waitForURL(server.console);
    for (const path of ['', 'sessions', 'history', 'users']) {
      await page.goto(server.console + path);
      const overflow = await page.evaluate(
        () => document.documentElement.scrollWidth - document.documentElement.clientWidth,
      );
      assert.ok(overflow <= 0, `${path || 'overview'} is ${overflow} px wider than the window`);
    }
    await page.goto(`${server.console}sessions`);
    await screenshot(page, 'sessions-narrow');
  });
});

test('every console page sends a strict content security policy and no-store', async () => {
  const r = await fetch(`${server.console}sign-in`);
  assert.equal(r.status, 200);
  const csp = r.headers.get('content-security-policy');
  assert.match(csp, /default-src 'self'/);
  assert.match(csp, /frame-ancestors 'none'/);
  assert.match(csp, /form-action 'self'/);
  assert.equal(r.headers.get('x-content-type-options'), 'nosniff');
  assert.equal(r.headers.get('cache-control'), 'no-store');
  assert.equal(r.headers.get('referrer-policy'), 'same-origin');
  const body = await r.text();
  assert.doesNotMatch(body, /https?:\/\//, 'no external resource');
});

test('an administrator adds a local user on the users page, who can then log in over SOAP', async () => {
  await withBrowser(async (page) => {
    await signIn(page, server, 'ops', 'ops-password');
    await page.goto(`${server.console}users`);
    await page.locator('#add-user').fill('newcomer');
    await page.locator('#add-password').fill('newcomer-password');
    await page.locator('#add-department').fill('Support');
    await page.getByRole('button', { name: 'Add user' }).click();
    await page.getByText('The user was added').waitFor();
    const row = page.locator('tr', { has: page.locator('th', { hasText: 'newcomer' }) });
    assert.equal(await row.count(), 1);
    assert.match(await row.innerText(), /Support/);
    await screenshot(page, 'user-added');
    // The password works: a login over SOAP opens a session.
    const id = await getSession(server, 'newcomer', 'newcomer-password');
    assert.equal(await validateSession(server, id), 'true');
    // The same name again is refused, and without the token nothing is added.
    const csrf = await csrfOf(page);
    const again = await postFromPage(page, `${server.console}users/add`, {
      csrf,
      user: 'newcomer',
      password: 'another-password',
    });
    assert.equal(again, 400);
    const forged = await postFromPage(page, `${server.console}users/add`, {
      user: 'intruder',
      password: 'intruder-password',
    });
    assert.equal(forged, 403);
    await page.goto(`${server.console}users`);
    assert.equal(await page.locator('th', { hasText: 'intruder' }).count(), 0);
  });
});

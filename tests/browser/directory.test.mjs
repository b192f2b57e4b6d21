// A directory user in the admin console, in Debian's Chromium: sessiond against a real slapd
// (tests/browser/slapd.py), a directory administrator signs in with its directory password,
// sees itself on the users page as a directory user with its DN and no forms for what the
// directory owns; a directory user without a right, or with a wrong password, is refused.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

import { startServer, openBrowser, signIn, screenshot } from './helpers.mjs';

const here = dirname(fileURLToPath(import.meta.url));
let directory;
let server;

before(async () => {
  directory = spawn('python3', [join(here, 'slapd.py')], { stdio: ['pipe', 'pipe', 'inherit'] });
  const line = await new Promise((ok, fail) => {
    createInterface({ input: directory.stdout }).once('line', ok);
    directory.once('exit', (code) => fail(new Error(`slapd.py exited with ${code}`)));
  });
  const d = JSON.parse(line);
  server = await startServer({
    SESSIOND_LDAP_URL: d.url,
    SESSIOND_LDAP_BIND_DN: d.bind_dn,
    SESSIOND_LDAP_BIND_PASSWORD_FILE: d.bind_password_file,
    SESSIOND_LDAP_USER_BASE: d.user_base,
    SESSIOND_LDAP_ADMIN_GROUPS: d.admin_group,
  });
});

after(async () => {
  await server?.stop();
  if (directory && directory.exitCode === null) {
    const exited = new Promise((r) => directory.once('exit', r));
    directory.stdin.end();
    await exited;
  }
});

test('a directory administrator signs in and is shown read-only as a directory user', async () => {
  const b = await openBrowser();
  try {
    const { page } = b;
    await signIn(page, server, 'dir0', 'dir-pw-0');
    await page.waitForURL(server.console);
    await page.getByRole('heading', { name: 'Overview' }).waitFor();
    assert.equal(await page.getByRole('button', { name: 'Sign out' }).count(), 1);
    await page.goto(`${server.console}users`);
    const row = page.locator('tr', { has: page.locator('th', { hasText: 'dir0' }) });
    assert.equal(await row.count(), 1);
    const text = await row.innerText();
    assert.match(text, /directory: uid=dir0,ou=people,dc=example,dc=org/);
    assert.match(text, /come from the directory/);
    assert.match(text, /AdministratorRight/);
    // No password form for a directory user: the directory owns it.
    assert.equal(await row.locator('input[type="password"]').count(), 0);
    // A local user's row still has its forms.
    const ops = page.locator('tr', { has: page.locator('th', { hasText: /^ops$/ }) });
    assert.ok((await ops.locator('input[type="password"]').count()) > 0);
    await screenshot(page, 'directory-user');
  } finally {
    await b.close();
  }
});

test('a directory user without a right, or with a wrong password, is not signed in', async () => {
  const b = await openBrowser();
  try {
    const { page } = b;
    for (const [user, password] of [
      ['dir1', 'dir-pw-1'],
      ['dir0', 'not-the-password'],
    ]) {
      await signIn(page, server, user, password);
      await page.waitForLoadState();
      assert.equal(
        await page.getByRole('button', { name: 'Sign out' }).count(),
        0,
        `${user} was signed in`,
      );
      assert.equal(await page.getByLabel('Password').count(), 1, 'the sign-in form is shown again');
    }
  } finally {
    await b.close();
  }
});

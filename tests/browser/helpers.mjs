// What every browser test needs: the real sessiond binary on a free port with its own SQLite
// file, users made with its CLI, SOAP calls as plain HTTP POSTs, and Debian's Chromium driven
// by playwright-core with a fresh profile.

import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = dirname(fileURLToPath(import.meta.url));
const repo = resolve(here, '..', '..');
export const outputDir = join(here, 'output');
mkdirSync(outputDir, { recursive: true });

const binary =
  process.env.SESSIOND_BIN ||
  join(process.env.CARGO_TARGET_DIR || join(repo, 'target'), 'debug', 'sessiond');
const chromiumPath = process.env.CHROMIUM || '/usr/bin/chromium';

async function freePort() {
  return new Promise((ok, fail) => {
    const s = createServer();
    s.once('error', fail);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => ok(port));
    });
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** A running sessiond with its own database; `stop()` ends it and removes its files. */
export async function startServer(extraEnv = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'sessiond-browser-'));
  const port = await freePort();
  const db = join(dir, 'sessiond.db');
  const env = {
    ...process.env,
    DATABASE_URL: `sqlite://${db}`,
    SESSIOND_BIND: `127.0.0.1:${port}`,
    SESSIOND_LOCATION: 'browser-test',
    SESSIOND_ADMIN_PASSWORD_FILE: join(dir, 'admin-password'),
    RUST_LOG: 'warn',
    ...extraEnv,
  };
  const cli = (args, input) => {
    const r = spawnSync(binary, args, { env, input, encoding: 'utf8' });
    if (r.status !== 0) {
      throw new Error(`sessiond ${args.join(' ')} failed: ${r.stderr || r.error}`);
    }
    return r.stdout;
  };
  const addUser = (user, password, rights = [], department) => {
    const args = ['user', 'add', user, '--password-stdin'];
    if (department) args.push('--department', department);
    cli(args, `${password}\n`);
    for (const right of rights) cli(['user', 'grant', user, right]);
  };
  // A first user before the start, so it creates no `admin` of its own.
  addUser('ops', 'ops-password', ['AdministratorRight']);
  const child = spawn(binary, ['serve'], { env, stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  child.stderr.on('data', (d) => {
    log += d;
  });
  const base = `http://127.0.0.1:${port}`;
  for (let i = 0; ; i++) {
    try {
      const r = await fetch(`${base}/admin/sign-in`);
      if (r.ok) break;
    } catch {
      // not listening yet
    }
    if (i > 100 || child.exitCode !== null) {
      throw new Error(`sessiond did not start: ${log}`);
    }
    await sleep(100);
  }
  const sql = (statements) => {
    const r = spawnSync('sqlite3', ['-cmd', '.timeout 10000', db], {
      input: statements,
      encoding: 'utf8',
    });
    if (r.status !== 0) throw new Error(`sqlite3 failed: ${r.stderr || r.error}`);
    return r.stdout;
  };
  return {
    base,
    console: `${base}/admin/`,
    db,
    cli,
    addUser,
    sql,
    log: () => log,
    async stop() {
      child.kill('SIGTERM');
      await new Promise((r) => (child.exitCode !== null ? r() : child.once('exit', r)));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

const NS = 'urn:sessiond:session:1';

/** One SOAP 1.1 call; the response text and status. */
export async function soap(server, operation, fields) {
  const body =
    `<?xml version="1.0" encoding="UTF-8"?>` +
    `<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/" xmlns:s="${NS}">` +
    `<soap:Body><s:${operation}>` +
    Object.entries(fields)
      .map(([k, v]) => `<s:${k}>${v}</s:${k}>`)
      .join('') +
    `</s:${operation}></soap:Body></soap:Envelope>`;
  const r = await fetch(`${server.base}/services/SessionService`, {
    method: 'POST',
    headers: { 'Content-Type': 'text/xml; charset=utf-8', SOAPAction: '' },
    body,
  });
  return { status: r.status, text: await r.text() };
}

function element(text, name) {
  const m = text.match(new RegExp(`<(?:[\\w-]+:)?${name}>([^<]*)</`));
  return m ? m[1] : undefined;
}

export async function getSession(server, user, password) {
  const r = await soap(server, 'getSession', { userId: user, password });
  const id = element(r.text, 'sessionId');
  if (!id) throw new Error(`getSession failed: ${r.status} ${r.text}`);
  return id;
}

export async function validateSession(server, sessionId) {
  const r = await soap(server, 'validateSession', { sessionId });
  return element(r.text, 'valid');
}

/** A fault's code, or undefined. */
export function faultCode(text) {
  return element(text, 'code');
}

/** Debian's Chromium with a fresh profile of its own; `close()` also removes the profile. */
export async function openBrowser() {
  const profile = mkdtempSync(join(tmpdir(), 'sessiond-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: chromiumPath,
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
    viewport: { width: 1280, height: 900 },
  });
  const page = context.pages()[0] || (await context.newPage());
  return {
    context,
    page,
    async close() {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

export async function signIn(page, server, user, password) {
  await page.goto(server.console);
  await page.getByLabel('User').fill(user);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
}

export async function screenshot(page, name, fullPage = true) {
  await page.screenshot({ path: join(outputDir, `${name}.png`), fullPage });
}

/** The CSRF token the page's own forms carry. */
export async function csrfOf(page) {
  return page.locator('input[name="csrf"]').first().inputValue();
}

/** A form POST from inside the page (same origin, the page's cookie): its status. */
export async function postFromPage(page, path, fields) {
  return page.evaluate(
    async ({ path, fields }) => {
      const r = await fetch(path, {
        method: 'POST',
        headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams(fields).toString(),
        redirect: 'manual',
      });
      return r.status;
    },
    { path, fields },
  );
}

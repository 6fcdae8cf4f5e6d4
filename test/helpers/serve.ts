import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import type { LscModel } from '../../runtime/model.js';
import { LscServer, type ServerOptions } from '../../server/server.js';
import { ROOT } from './run-cli.js';

/** The bundled tiny model (no chat template). */
export const TINY = path.join(ROOT, 'examples/models/tiny-code');

/** A small Zephyr-like template (as test/chat.test.ts uses). */
export const CHAT_TEMPLATE = '{{ bos_token }}{% for m in messages %}<|{{ m.role }}|>\n{{ m.content }}{{ eos_token }}\n{% endfor %}' +
  '{% if add_generation_prompt %}<|assistant|>\n{% endif %}';

/** A copy of tiny-code in `tmp` whose tokenizer_config.json has CHAT_TEMPLATE (the bundled one has none). */
export function tinyChatCopy(tmp: string): string {
  const dir = path.join(tmp, 'tiny-chat');
  fs.mkdirSync(dir);
  for (const f of fs.readdirSync(TINY)) fs.copyFileSync(path.join(TINY, f), path.join(dir, f));
  const tc = JSON.parse(fs.readFileSync(path.join(TINY, 'tokenizer_config.json'), 'utf8')) as Record<string, unknown>;
  assert.equal(tc.chat_template, undefined, 'the bundled model has no chat template');
  fs.writeFileSync(path.join(dir, 'tokenizer_config.json'), JSON.stringify({ ...tc, chat_template: CHAT_TEMPLATE }));
  return dir;
}

export interface Running { base: string; server: LscServer; close: (graceMs?: number) => Promise<void> }

/** An in-process server on a free loopback port, serving `model`. */
export async function startServer(model: LscModel, opts: ServerOptions = {}): Promise<Running> {
  const server = new LscServer(opts);
  const addr = await server.listen(0, '127.0.0.1');
  server.setModel(model);
  return { base: `http://127.0.0.1:${addr.port}`, server, close: (graceMs = 0) => server.close(graceMs) };
}

export interface Reply { status: number; headers: Headers; body: unknown; text: string }

/** A plain HTTP request; the body parsed as JSON where it is JSON. */
export async function request(base: string, method: string, route: string, body?: string | object, headers: Record<string, string> = {}): Promise<Reply> {
  const res = await fetch(base + route, {
    method, headers: { 'Content-Type': 'application/json', ...headers },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  let parsed: unknown;
  try { parsed = JSON.parse(text); } catch { parsed = undefined; }
  return { status: res.status, headers: res.headers, body: parsed, text };
}

/** One gauge or counter of /metrics (no labels). */
export async function metric(base: string, name: string): Promise<number> {
  const text = (await request(base, 'GET', '/metrics')).text;
  const m = new RegExp(`^${name} (\\S+)$`, 'm').exec(text);
  assert.ok(m, `/metrics has ${name}`);
  return Number(m[1]);
}

/** Polls `check` every 50 ms, at most `ms`; fails with `what` when it never holds. */
export async function waitFor(check: () => Promise<boolean> | boolean, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) assert.fail(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export interface Spawned { child: ChildProcess; base: string; stderr: () => string; exit: Promise<number | null> }

/** `lsc serve` as a child process on a free port; resolves once it prints its address (the model may still load). */
export function spawnServe(args: string[], env: NodeJS.ProcessEnv = {}): Promise<Spawned> {
  const child = spawn(process.execPath, [path.join(ROOT, 'dist/cli/main.js'), 'serve', ...args, '--port', '0'], {
    cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  const exit = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`lsc serve did not start in 60 s:\n${stderr}`)); }, 60_000);
    child.stderr!.setEncoding('utf8').on('data', (s: string) => {
      stderr += s;
      const m = /listening on (http:\/\/\S+)/.exec(stderr);
      if (m) {
        clearTimeout(timer);
        resolve({ child, base: m[1], stderr: () => stderr, exit });
      }
    });
    void exit.then((code) => { clearTimeout(timer); reject(new Error(`lsc serve exited (${code}) before listening:\n${stderr}`)); });
  });
}

/**
 * The server of `lsc web`: on 127.0.0.1, the page and its bundle (dist/web, built by web/build.mjs),
 * plans.json (the model's plans, compiled here for WebGPU's default limits with an f16 and an f32
 * KV cache: the page picks by its adapter's shader-f16), and the model directory's files under
 * /model/ with Range support (the page reads safetensors headers and pieces with Range requests).
 */
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { compileGraph } from '../compiler/compile.js';
import { LscError } from '../compiler/errors.js';
import type { Graph } from '../compiler/ir/graph.js';
import { checkModelDir, modelGraph } from '../runtime/model-dir.js';
import { resolveModelPath } from '../runtime/hf-cache.js';
import type { WebPlanFile } from '../runtime/web-plan.js';

export const WEB_HOST = '127.0.0.1';
/** dist/web: the bundle npm run build writes (this file is dist/cli/web-server.js). */
const BUNDLE_DIR = fileURLToPath(new URL('../web/', import.meta.url));
const BUNDLE_FILES: Record<string, string> = {
  '/': 'index.html', '/index.html': 'index.html', '/page.js': 'page.js', '/page.js.map': 'page.js.map',
  '/lsc.js': 'lsc.js', '/lsc.js.map': 'lsc.js.map',
};
const TYPES: Record<string, string> = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.json': 'application/json', '.map': 'application/json' };
/** Model files are plain names in the model directory: nothing above or beside it is served. */
const MODEL_FILE = /^[A-Za-z0-9_][A-Za-z0-9_.-]*$/;

export interface WebServerOptions {
  /** Model directory (or a cached Hugging Face id). */
  model: string;
  /** 0 (default): a free port. */
  port?: number;
  /** KV context of the plans (default: the graph's). */
  ctx?: number;
  /** An HTML file to serve at / instead of lsc's page (an embedding page next to /lsc.js, /plans.json and /model/). */
  page?: string;
}

export interface WebServer {
  url: string;
  port: number;
  close(): Promise<void>;
}

/**
 * The plans.json of a model: a plan per KV dtype and kernel target (GPUs, or CPU drivers such as
 * SwiftShader, where the GPU defaults run ~80x slower), for WebGPU's default limits (any adapter).
 */
export function webPlans(graph: Graph): WebPlanFile {
  const plans = (['f16', 'f32'] as const).flatMap((kv) => (['gpu', 'cpu'] as const).map((target) => {
    const c = compileGraph({ ...graph, dtypes: { ...graph.dtypes, kv } }, { target });
    return { kv, target, plan: c.plan, wgsl: Object.fromEntries(c.wgsl) };
  }));
  return { format: 'lsc-web-plans', version: 1, plans };
}

/** dist/web, built now when missing (an installed package ships it; a checkout builds it with npm run build). */
async function bundleDir(): Promise<string> {
  if (Object.values(BUNDLE_FILES).every((f) => f.endsWith('.map') || fs.existsSync(path.join(BUNDLE_DIR, f)))) return BUNDLE_DIR;
  const build = fileURLToPath(new URL('../../web/build.mjs', import.meta.url));
  if (!fs.existsSync(build)) throw new LscError(`the page bundle is missing from ${BUNDLE_DIR}`, {}, 'run npm run build');
  const { buildWeb } = await import(build) as { buildWeb(out: string): Promise<string> };
  return buildWeb(BUNDLE_DIR);
}

export async function startWebServer(opts: WebServerOptions): Promise<WebServer> {
  const dir = path.resolve(resolveModelPath(opts.model));
  checkModelDir(dir);
  let { graph } = modelGraph(dir);
  if (opts.ctx !== undefined) graph = { ...graph, dims: { ...graph.dims, ctx: { max: opts.ctx } } };
  const plans = Buffer.from(JSON.stringify(webPlans(graph)));
  const bundle = await bundleDir();
  const page = opts.page === undefined ? undefined : path.resolve(opts.page);
  if (page !== undefined && !fs.statSync(page, { throwIfNoEntry: false })?.isFile()) {
    throw new LscError(`page '${opts.page}' is not a file`, { file: opts.page }, 'pass an HTML file');
  }

  const server = http.createServer((req, res) => {
    try {
      serve(req, res, { dir, bundle, plans, page });
    } catch (e) {
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
      res.end(`lsc web: ${(e as Error).message}\n`);
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (e: NodeJS.ErrnoException) => reject(e.code === 'EADDRINUSE'
      ? new LscError(`port ${opts.port} on ${WEB_HOST} is in use`, {}, 'choose another --port, or --port 0 for a free one')
      : e));
    server.listen(opts.port ?? 0, WEB_HOST, () => resolve());
  });
  const port = (server.address() as { port: number }).port;
  return {
    url: `http://${WEB_HOST}:${port}/`,
    port,
    close: () => new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    }),
  };
}

interface Served { dir: string; bundle: string; plans: Buffer; page?: string }

function serve(req: http.IncomingMessage, res: http.ServerResponse, s: Served): void {
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.writeHead(405, { allow: 'GET, HEAD' }).end();
    return;
  }
  const url = new URL(req.url ?? '/', 'http://x');
  const name = url.pathname;
  if (name === '/plans.json') {
    send(res, req, 200, { 'content-type': TYPES['.json'], 'cache-control': 'no-cache' }, s.plans);
  } else if (BUNDLE_FILES[name]) {
    const file = s.page !== undefined && (name === '/' || name === '/index.html') ? s.page : path.join(s.bundle, BUNDLE_FILES[name]);
    send(res, req, 200, { 'content-type': TYPES[path.extname(file)], 'cache-control': 'no-cache' }, fs.readFileSync(file));
  } else if (name.startsWith('/model/') && MODEL_FILE.test(decodeURIComponent(name.slice(7)))) {
    serveFile(req, res, path.join(s.dir, decodeURIComponent(name.slice(7))));
  } else {
    send(res, req, 404, { 'content-type': 'text/plain' }, Buffer.from('not found\n'));
  }
}

function send(res: http.ServerResponse, req: http.IncomingMessage, status: number, headers: http.OutgoingHttpHeaders, body: Buffer): void {
  res.writeHead(status, { ...headers, 'content-length': body.length });
  res.end(req.method === 'HEAD' ? undefined : body);
}

/** A model file, whole or one byte range (bytes=a-b, a-, -n). */
function serveFile(req: http.IncomingMessage, res: http.ServerResponse, file: string): void {
  let st: fs.Stats;
  try {
    st = fs.statSync(file);
  } catch {
    send(res, req, 404, { 'content-type': 'text/plain' }, Buffer.from('not found\n'));
    return;
  }
  if (!st.isFile()) {
    send(res, req, 404, { 'content-type': 'text/plain' }, Buffer.from('not a file\n'));
    return;
  }
  const size = st.size;
  const type = TYPES[path.extname(file)] ?? 'application/octet-stream';
  const base = { 'content-type': type, 'accept-ranges': 'bytes', 'cache-control': 'no-cache', 'last-modified': st.mtime.toUTCString() };
  const range = req.headers.range;
  let start = 0, end = size - 1, status = 200;
  if (range !== undefined) {
    const m = /^bytes=(\d*)-(\d*)$/.exec(range.trim());
    if (m && (m[1] || m[2])) {
      if (m[1]) { start = Number(m[1]); end = m[2] ? Math.min(Number(m[2]), size - 1) : size - 1; }
      else { start = Math.max(0, size - Number(m[2])); }
    }
    if (!m || (!m[1] && !m[2]) || start > end || start >= size) {
      res.writeHead(416, { ...base, 'content-range': `bytes */${size}` }).end();
      return;
    }
    status = 206;
  }
  res.writeHead(status, {
    ...base, 'content-length': end - start + 1, ...(status === 206 ? { 'content-range': `bytes ${start}-${end}/${size}` } : {}),
  });
  if (req.method === 'HEAD' || size === 0) {
    res.end();
    return;
  }
  fs.createReadStream(file, { start, end }).on('error', () => res.destroy()).pipe(res);
}

import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { extname, join, relative, sep } from 'node:path';
import { gzipSync } from 'node:zlib';

/** Where the api role serves the operator dashboard, on the API's own origin. */
export const DASHBOARD_PATH = '/ui';

/**
 * What `npm run build` writes the dashboard to (see ui/vite.config.mts). Resolved from this file's folder
 * in both src/dashboard (tests) and dist/dashboard (the built service), so both serve the same build.
 */
const DASHBOARD_BUILD_DIR = join(__dirname, '..', '..', 'dist', 'ui');

/**
 * The policy for /ui, stricter than the default one of every other answer: nothing inline (no script, no
 * style attribute, no <style>), nothing from another origin, no plugins, no framing, and scripts may not
 * write HTML from strings (Trusted Types). It leaves out `upgrade-insecure-requests`, which the default
 * policy has: an operator often reaches the api over plain HTTP inside a cluster or a port-forward, and
 * that directive makes the browser fetch the dashboard's own scripts and API calls over https, where
 * nothing answers, so the page would stay blank.
 */
export const DASHBOARD_CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self'",
  "connect-src 'self'",
  "font-src 'self'",
  "manifest-src 'self'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
  "object-src 'none'",
  "require-trusted-types-for 'script'",
  'trusted-types',
].join('; ');

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.woff2': 'font/woff2',
  '.json': 'application/json',
  '.txt': 'text/plain; charset=utf-8',
};

/** Files under assets/ carry a hash of their content in their name: a new build gives new names. */
const IMMUTABLE = 'public, max-age=31536000, immutable';
/** index.html names the current build's assets, so the browser must never keep an old one. */
const NOT_STORED = 'no-store';

interface DashboardFile {
  body: Buffer;
  gzipped: Buffer | null;
  contentType: string;
  cacheControl: string;
  etag: string;
}

/** The built dashboard, held in memory: a few small files, read once at boot. */
export type DashboardFiles = ReadonlyMap<string, DashboardFile>;

/**
 * Reads every file of the build into memory, keyed by its URL path below /ui ("/" is index.html). Only
 * these paths are ever served, so no request path reaches the file system. Null when there is no build.
 */
export function loadDashboardFiles(dir: string = DASHBOARD_BUILD_DIR): DashboardFiles | null {
  if (!existsSync(join(dir, 'index.html'))) return null;
  const files = new Map<string, DashboardFile>();
  const walk = (folder: string): void => {
    for (const name of readdirSync(folder)) {
      const path = join(folder, name);
      if (statSync(path).isDirectory()) {
        walk(path);
        continue;
      }
      const urlPath = '/' + relative(dir, path).split(sep).join('/');
      const body = readFileSync(path);
      const contentType = CONTENT_TYPES[extname(name)] ?? 'application/octet-stream';
      // Compressing once here costs a few milliseconds at boot instead of some on every request.
      const compressed = /^(text|image\/svg|application\/json)/.test(contentType) ? gzipSync(body) : null;
      files.set(urlPath === '/index.html' ? '/' : urlPath, {
        body,
        gzipped: compressed && compressed.length < body.length ? compressed : null,
        contentType,
        cacheControl: urlPath.startsWith('/assets/') ? IMMUTABLE : NOT_STORED,
        etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"`,
      });
    }
  };
  walk(dir);
  return files;
}

/**
 * Serves the dashboard at /ui. `/ui` and `/ui/` answer index.html (the dashboard routes by the URL's
 * fragment, so no other page path exists); `/ui/assets/...` the hashed files. Anything else gets the API's
 * 404 problem. The build names its assets by absolute path (/ui/assets/...), so /ui needs no redirect to
 * /ui/. With no build, /ui says so instead of a bare 404. HEAD is answered like GET, without the body.
 */
export function serveDashboard(instance: FastifyInstance, files: DashboardFiles | null): void {
  const serve = (request: FastifyRequest, reply: FastifyReply): void => {
    if (!files) {
      reply
        .code(404)
        .type('text/plain')
        .header('Cache-Control', NOT_STORED)
        .send('The dashboard was not built into this service: run npm run build.\n');
      return;
    }
    const path = request.url.split('?', 1)[0].slice(DASHBOARD_PATH.length) || '/';
    const file = files.get(path);
    if (!file) return reply.callNotFound();
    reply.headers({
      'Content-Security-Policy': DASHBOARD_CONTENT_SECURITY_POLICY,
      'Content-Type': file.contentType,
      'Cache-Control': file.cacheControl,
      ETag: file.etag,
      Vary: 'Accept-Encoding',
    });
    if (request.headers['if-none-match'] === file.etag) {
      reply.code(304).send();
      return;
    }
    const gzip = file.gzipped !== null && /\bgzip\b/.test(String(request.headers['accept-encoding'] ?? ''));
    if (gzip) reply.header('Content-Encoding', 'gzip');
    reply.code(200).send(gzip ? file.gzipped! : file.body);
  };
  instance.get(DASHBOARD_PATH, serve);
  instance.get(`${DASHBOARD_PATH}/*`, serve);
}

// GET /: the live page, and the few files it loads (page/), read once when
// this module loads: from src/http/page/ under tsx, from dist/http/page/ in
// a build (`npm run build` copies them there). Plain HTML, CSS and ES
// modules: no build step, no framework.
import { readFileSync } from 'node:fs';
import type { FastifyPluginAsync } from 'fastify';

const PAGE_DIR = new URL('../page/', import.meta.url);

const FILES: Record<string, { file: string; type: string }> = {
  '/': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/page/style.css': { file: 'style.css', type: 'text/css; charset=utf-8' },
  '/page/live.js': { file: 'live.js', type: 'text/javascript; charset=utf-8' },
  '/page/ladder.js': { file: 'ladder.js', type: 'text/javascript; charset=utf-8' },
};

const CONTENTS = new Map(Object.entries(FILES).map(([path, { file }]) => [path, readPageFile(file)]));

// Only this origin's own files and its event stream; no inline script, so
// that text from phones (caller names) could never run even if it slipped
// into the markup.
const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

export const pageRoutes: FastifyPluginAsync = async (app) => {
  for (const [path, { type }] of Object.entries(FILES)) {
    const body = CONTENTS.get(path)!;
    app.get(path, async (_request, reply) =>
      reply
        .header('content-type', type)
        .header('cache-control', 'no-cache')
        .header('x-content-type-options', 'nosniff')
        .header('content-security-policy', CSP)
        .header('referrer-policy', 'no-referrer')
        .send(body),
    );
  }
};

function readPageFile(file: string): Buffer {
  const url = new URL(file, PAGE_DIR);
  try {
    return readFileSync(url);
  } catch (err) {
    throw new Error(`the live page's file ${url.pathname} is missing (npm run build copies src/http/page/ to dist/http/page/): ${(err as Error).message}`);
  }
}

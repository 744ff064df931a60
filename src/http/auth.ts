// The HTTP_TOKEN check. Routes marked `config: { public: true }` (the health
// checks) are open to all; every other one, unknown routes included, answers
// 401 without the token, presented either way:
// - `Authorization: Bearer <HTTP_TOKEN>`, for programs;
// - the session cookie, for a browser, which cannot put a header on a page
//   load or an EventSource: `GET /?token=<HTTP_TOKEN>` (the live page's
//   address) answers with the cookie and a redirect to the page without the
//   token in its address. The cookie holds a digest of the token, not the
//   token, and is HttpOnly (no script reads it) and SameSite=Strict (no
//   other site's page sends it).
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import type { FastifyReply, FastifyRequest, onRequestHookHandler } from 'fastify';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Served without the token. */
    public?: boolean;
  }
}

export const SESSION_COOKIE = 'ari_transfer_session';
/** The page's address, where `?token=` is taken. */
const LOGIN_PATH = '/';

export function tokenAuth(token: string): onRequestHookHandler {
  // Comparing digests keeps the comparisons constant-time whatever the lengths.
  const expectedToken = digest(token);
  const session = sessionValue(token);
  const expectedSession = digest(session);
  const matches = (presented: string, expected: Buffer) => timingSafeEqual(digest(presented), expected);

  return function checkToken(request: FastifyRequest, reply: FastifyReply, done: (err?: Error) => void) {
    if (request.routeOptions.config.public) return done();
    const login = loginToken(request);
    if (login !== undefined) {
      if (!matches(login, expectedToken)) return refuse(reply, true);
      // Relative, so that the page also works behind a proxy under a path prefix.
      reply
        .code(303)
        .header('set-cookie', `${SESSION_COOKIE}=${session}; HttpOnly; SameSite=Strict`)
        .header('location', './')
        .header('cache-control', 'no-store')
        .send();
      return;
    }
    const bearer = bearerToken(request.headers.authorization);
    if (bearer !== undefined && matches(bearer, expectedToken)) return done();
    const cookie = cookieValue(request.headers.cookie, SESSION_COOKIE);
    if (cookie !== undefined && matches(cookie, expectedSession)) return done();
    refuse(reply, bearer !== undefined || cookie !== undefined);
  };
}

function refuse(reply: FastifyReply, invalid: boolean): void {
  reply
    .code(401)
    .header('www-authenticate', invalid ? 'Bearer realm="ari-transfer", error="invalid_token"' : 'Bearer realm="ari-transfer"')
    .send({
      statusCode: 401,
      error: 'Unauthorized',
      message: 'a valid token is required (Authorization: Bearer <HTTP_TOKEN>; in a browser, open /?token=<HTTP_TOKEN> once)',
    });
}

/** `?token=` on a page load of `/` (GET, or HEAD). */
function loginToken(request: FastifyRequest): string | undefined {
  if (request.method !== 'GET' && request.method !== 'HEAD') return undefined;
  if (request.url.split('?')[0] !== LOGIN_PATH) return undefined;
  const token = (request.query as Record<string, unknown> | undefined)?.token;
  return typeof token === 'string' ? token : undefined;
}

function bearerToken(header: string | undefined): string | undefined {
  const match = header?.match(/^Bearer[ \t]+(\S+)[ \t]*$/i);
  return match?.[1];
}

function cookieValue(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

/** What the cookie holds: derived from the token, so the browser never stores the token itself. */
function sessionValue(token: string): string {
  return createHmac('sha256', token).update('ari-transfer live page session').digest('base64url');
}

function digest(value: string): Buffer {
  return createHash('sha256').update(value, 'utf8').digest();
}

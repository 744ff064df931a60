// Bearer-token check for the HTTP API (HTTP_TOKEN). Routes marked
// `config: { public: true }` (the health checks) are open to all; every other
// one, unknown routes included, answers 401 without the right token.
import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyReply, FastifyRequest, onRequestHookHandler } from 'fastify';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Served without the bearer token. */
    public?: boolean;
  }
}

export function bearerAuth(token: string): onRequestHookHandler {
  // Comparing digests keeps the comparison constant-time whatever the lengths.
  const expected = digest(token);
  return function checkBearerToken(request: FastifyRequest, reply: FastifyReply, done: (err?: Error) => void) {
    if (request.routeOptions.config.public) return done();
    const presented = bearerToken(request.headers.authorization);
    if (presented !== undefined && timingSafeEqual(digest(presented), expected)) return done();
    reply
      .code(401)
      .header('www-authenticate', presented === undefined ? 'Bearer realm="ari-transfer"' : 'Bearer realm="ari-transfer", error="invalid_token"')
      .send({ statusCode: 401, error: 'Unauthorized', message: 'a valid bearer token is required (Authorization: Bearer <HTTP_TOKEN>)' });
  };
}

function bearerToken(header: string | undefined): string | undefined {
  const match = header?.match(/^Bearer[ \t]+(\S+)[ \t]*$/i);
  return match?.[1];
}

function digest(value: string): Buffer {
  return createHash('sha256').update(value, 'utf8').digest();
}

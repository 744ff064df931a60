// Starts the HTTP API on HTTP_HOST:HTTP_PORT and stops it.
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import type { HttpConfig } from '../config.js';
import { buildHttpApp, type HttpAppOptions } from './app.js';

export interface HttpServer {
  app: FastifyInstance;
  /** The bound address, e.g. http://127.0.0.1:8080 (the real port when HTTP_PORT=0). */
  url: string;
  port: number;
  /** Stops accepting connections and waits for the requests in progress. */
  close(): Promise<void>;
}

/** Why the API could not listen, in one sentence an operator can act on. */
export class HttpListenError extends Error {
  override readonly name = 'HttpListenError';
  constructor(
    readonly host: string,
    readonly port: number,
    readonly code: string | undefined,
  ) {
    super(`cannot listen on ${hostPort(host, port)}: ${describe(code)} (HTTP_HOST, HTTP_PORT)`);
  }
}

export async function startHttpServer(options: HttpAppOptions & { config: HttpConfig }): Promise<HttpServer> {
  const { host, port } = options.config;
  const app = buildHttpApp(options);
  try {
    await app.listen({ host, port });
  } catch (err) {
    await app.close().catch(() => undefined);
    throw new HttpListenError(host, port, (err as NodeJS.ErrnoException).code);
  }
  const bound = (app.server.address() as AddressInfo).port;
  return {
    app,
    url: `http://${hostPort(host, bound)}`,
    port: bound,
    close: () => app.close(),
  };
}

function hostPort(host: string, port: number): string {
  return `${host.includes(':') ? `[${host}]` : host}:${port}`;
}

function describe(code: string | undefined): string {
  switch (code) {
    case 'EADDRINUSE':
      return 'the port is already in use';
    case 'EADDRNOTAVAIL':
      return 'the address is not one of this host';
    case 'EACCES':
      return 'permission denied';
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return 'the host name does not resolve';
    default:
      return code ?? 'unknown error';
  }
}

// Docker HEALTHCHECK of the ari-transfer image: asks the service's own
// GET /readyz (no token needed): healthy = connected to Asterisk's ARI and
// its call registry in sync. Exit 0 = healthy.
const env = process.env;
// HTTP_HOST may write an IPv6 address in brackets ([::1]), as the service accepts.
const bound = (env.HTTP_HOST || '127.0.0.1').replace(/^\[(.*)\]$/, '$1');
// A wildcard bind is reached on loopback from inside the container.
const host = bound === '0.0.0.0' ? '127.0.0.1' : bound === '::' ? '[::1]' : bound.includes(':') ? `[${bound}]` : bound;
const url = `http://${host}:${env.HTTP_PORT || 8080}/readyz`;

try {
  const res = await fetch(url, { signal: AbortSignal.timeout(3000) });
  if (!res.ok) {
    const body = await res.json().catch(() => ({}));
    console.error(`unhealthy: GET ${url} answered ${res.status}${body.reason ? `: ${body.reason}` : ''}`);
    process.exit(1);
  }
  process.exit(0);
} catch (err) {
  const cause = err instanceof Error && err.cause instanceof Error ? err.cause.message : String(err?.message ?? err);
  console.error(`unhealthy: ${url} unreachable (${cause})`);
  process.exit(1);
}

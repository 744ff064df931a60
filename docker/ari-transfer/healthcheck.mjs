// Docker HEALTHCHECK of the ari-transfer image: is Asterisk's ARI reachable
// with this container's own ARI_URL and credentials?
//
// The service has no HTTP health endpoint yet; this checks the one thing it
// cannot work without (and catches a wrong password or URL, which the
// service itself only logs while it keeps reconnecting). Exit 0 = healthy.
// To be replaced by a request to the service's own /healthz.
import { readFileSync } from 'node:fs';

const env = process.env;
// Same normalisation as src/config.ts: no trailing slash, no trailing /ari.
const base = (env.ARI_URL || 'http://127.0.0.1:8088').replace(/\/+$/, '').replace(/\/ari$/, '');

function password() {
  if (env.ARI_PASSWORD) return env.ARI_PASSWORD;
  if (env.ARI_PASSWORD_FILE) return readFileSync(env.ARI_PASSWORD_FILE, 'utf8').replace(/\r?\n$/, '');
  return '';
}

try {
  const credentials = Buffer.from(`${env.ARI_USERNAME ?? ''}:${password()}`).toString('base64');
  const res = await fetch(`${base}/ari/asterisk/ping`, {
    headers: { authorization: `Basic ${credentials}` },
    signal: AbortSignal.timeout(3000),
  });
  if (!res.ok) {
    console.error(`unhealthy: GET ${base}/ari/asterisk/ping answered ${res.status}`);
    process.exit(1);
  }
  process.exit(0);
} catch (err) {
  const cause = err instanceof Error && err.cause instanceof Error ? err.cause.message : String(err?.message ?? err);
  console.error(`unhealthy: ARI at ${base} unreachable (${cause})`);
  process.exit(1);
}

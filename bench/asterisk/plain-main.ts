// The plain ARI application as a program: `node --import tsx
// bench/asterisk/plain-main.ts`, configured by ARI_URL, ARI_USERNAME,
// ARI_PASSWORD and ARI_APP. Prints `ready` once connected, then one JSON line
// `{"timeline": ...}` per transfer; exits 0 on SIGTERM or SIGINT, 1 if the
// events WebSocket closes.
import { AriHttp } from './ari-http.js';
import { PlainApp } from './plain-app.js';

function fail(message: string): never {
  process.stderr.write(`plain-app: ${message}\n`);
  process.exit(1);
}

async function main(): Promise<void> {
  const { ARI_URL: url, ARI_USERNAME: username, ARI_PASSWORD: password, ARI_APP: appName = 'ari-transfer' } = process.env;
  if (!url || !username || !password) fail('ARI_URL, ARI_USERNAME and ARI_PASSWORD are required');
  const app = new PlainApp(new AriHttp(url, username, password), appName, (timeline) => process.stdout.write(`${JSON.stringify({ timeline })}\n`));
  await app.start(() => fail('the ARI events WebSocket closed'));
  process.stdout.write('ready\n');
  const stop = () => {
    app.stop();
    process.exit(0);
  };
  process.once('SIGTERM', stop).once('SIGINT', stop);
}

main().catch((err: unknown) => fail(err instanceof Error ? err.message : String(err)));

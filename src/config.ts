// Environment variables → a typed, validated configuration.
// Every problem is reported by variable name so an operator can fix it
// from one line of output; the process exits 2 on any of them (see main.ts).
import { readFileSync } from 'node:fs';
import { z } from 'zod';

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

export interface AriConfig {
  /** Base URL of Asterisk's HTTP server, without the /ari suffix. */
  url: string;
  username: string;
  password: string;
  app: string;
  subscribeAll: boolean;
  requestTimeoutMs: number;
  reconnectMaxDelayMs: number;
}

export interface Config {
  ari: AriConfig;
  logLevel: (typeof LOG_LEVELS)[number];
}

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  constructor(readonly problems: string[]) {
    super(`invalid configuration: ${problems.join('; ')}`);
  }
}

const booleanFlag = z
  .enum(['true', 'false', '1', '0', 'yes', 'no'], { error: 'must be true or false' })
  .transform((v) => v === 'true' || v === '1' || v === 'yes');

const milliseconds = (min: number, max: number) =>
  z.coerce
    .number({ error: 'must be a whole number of milliseconds' })
    .int('must be a whole number of milliseconds')
    .min(min, `must be at least ${min}`)
    .max(max, `must be at most ${max}`);

const ariUrl = z
  .string()
  .refine((v) => URL.canParse(v), 'must be a URL such as http://127.0.0.1:8088')
  .transform((v) => new URL(v))
  .refine((u) => u.protocol === 'http:' || u.protocol === 'https:', 'must use http:// or https://')
  .refine((u) => !u.username && !u.password, 'must not contain credentials; use ARI_USERNAME and ARI_PASSWORD')
  // Accept "http://host:8088", "http://host:8088/" and "http://host:8088/ari".
  .transform((u) => u.origin + u.pathname.replace(/\/+$/, '').replace(/\/ari$/, ''));

// Keys are the environment variable names, so zod's issue paths name them.
const envSchema = z.object({
  ARI_URL: ariUrl.default('http://127.0.0.1:8088'),
  ARI_USERNAME: z.string({ error: 'is required' }).min(1, 'must not be empty'),
  ARI_PASSWORD: z.string().min(1, 'must not be empty').optional(),
  ARI_PASSWORD_FILE: z.string().min(1, 'must not be empty').optional(),
  ARI_APP: z
    .string()
    .regex(/^[A-Za-z0-9_.-]+$/, 'must be a Stasis application name (letters, digits, . _ -)')
    .default('ari-transfer'),
  ARI_SUBSCRIBE_ALL: booleanFlag.default(false),
  ARI_REQUEST_TIMEOUT_MS: milliseconds(100, 60_000).default(5_000),
  ARI_RECONNECT_MAX_MS: milliseconds(100, 300_000).default(10_000),
  LOG_LEVEL: z.enum(LOG_LEVELS, { error: `must be one of ${LOG_LEVELS.join(', ')}` }).default('info'),
});

/** Reads the configuration from `env`; throws ConfigError naming each bad variable. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  // An empty variable counts as unset, as in most shells' ${VAR:-default}.
  const present = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ''));
  const parsed = envSchema.safeParse(present);
  if (!parsed.success) {
    throw new ConfigError(parsed.error.issues.map((i) => `${String(i.path[0] ?? '?')} ${i.message}`));
  }
  const e = parsed.data;
  return {
    ari: {
      url: e.ARI_URL,
      username: e.ARI_USERNAME,
      password: resolvePassword(e.ARI_PASSWORD, e.ARI_PASSWORD_FILE),
      app: e.ARI_APP,
      subscribeAll: e.ARI_SUBSCRIBE_ALL,
      requestTimeoutMs: e.ARI_REQUEST_TIMEOUT_MS,
      reconnectMaxDelayMs: e.ARI_RECONNECT_MAX_MS,
    },
    logLevel: e.LOG_LEVEL,
  };
}

function resolvePassword(inline: string | undefined, file: string | undefined): string {
  if (inline && file) throw new ConfigError(['ARI_PASSWORD and ARI_PASSWORD_FILE are both set; set only one']);
  if (inline) return inline;
  if (!file) throw new ConfigError(['ARI_PASSWORD is required (or ARI_PASSWORD_FILE naming a file that holds it)']);
  let content: string;
  try {
    content = readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'unreadable';
    throw new ConfigError([`ARI_PASSWORD_FILE cannot be read (${code}): ${file}`]);
  }
  // Secret files (Docker, Kubernetes) usually end with a newline.
  const password = content.replace(/\r?\n$/, '');
  if (!password) throw new ConfigError([`ARI_PASSWORD_FILE is empty: ${file}`]);
  return password;
}

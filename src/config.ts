// Environment variables → a typed, validated configuration.
// Every problem is reported by variable name so an operator can fix it
// from one line of output; the process exits 2 on any of them (see main.ts).
import { readFileSync } from 'node:fs';
import { BlockList, isIP } from 'node:net';
import { hostname } from 'node:os';
import { z } from 'zod';
import { checkDestination } from './destination-syntax.js';
import { parseRegexList } from './regex-list.js';

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
  /** websocket: REST over the events socket where Asterisk takes it (22.4+), else HTTP; http: always HTTP. */
  restTransport: RestTransport;
}

export type RestTransport = 'websocket' | 'http';

export type RoutingMode = 'dial' | 'none';
export type RegistryKind = 'memory' | 'redis';

export interface RedisConfig {
  url: string;
  /** Every key starts with it, so several platforms can share one Redis. */
  keyPrefix: string;
  /** How long a node's entries outlive its last heartbeat. */
  ttlMs: number;
}

export interface RegistryConfig {
  kind: RegistryKind;
  /** The Asterisk node this instance serves: its entries in the shared registry are filed under it. */
  node: string;
  /** Set when kind is redis. */
  redis: RedisConfig | undefined;
}
export type HoldMode = 'ring' | 'moh';
/** TRANSFER_RECALL: after a transfer failed with the transferer gone, ring it back, dial a fallback, or nothing. */
export type RecallSetting = { to: 'off' } | { to: 'transferer' } | { to: 'destination'; destination: string };
export type CallerIdMode = 'transferee' | 'transferer' | 'none';

export interface TransferConfig {
  /** Dial string with `{exten}`, for transfer targets and routed calls. */
  dialTemplate: string;
  timeoutMs: number;
  holdMode: HoldMode;
  callerId: CallerIdMode;
  channelVars: Record<string, string>;
  allow: RegExp[];
  deny: RegExp[];
  policyUrl: string | undefined;
  policyTimeoutMs: number;
  /** Endpoints whose phones want 200 as soon as the blind-transfer leg is placed. */
  immediate200Endpoints: RegExp[];
  /** Dial string, with `{node}` and `{exten}`, of a call to another node (joining a transfer's two calls, or a blind target there). */
  internodeDialTemplate: string;
  /** Blind-transfer destinations that live on other nodes (routes to this node dropped): dialled there through the trunk. */
  nodeRoutes: NodeRoute[];
  /** After a blind or semi-attended transfer failed with the transferer gone: ring it back, dial a fallback, or nothing. */
  recall: RecallSetting;
  recallTimeoutMs: number;
  /** After a completed transfer, each remaining phone is told whom it now talks to (CONNECTEDLINE). */
  connectedLine: boolean;
  /** Calls sent back to their carrier with a REFER (ARI redirect) instead of a new leg; undefined: off. */
  referOut: ReferOutConfig | undefined;
}

/** TRANSFER_REFER_OUT_*: which calls go back to their carrier, for which destinations, referred where. */
export interface ReferOutConfig {
  /** The transferee's endpoint (a trunk whose carrier takes REFER). */
  endpoints: RegExp[];
  /** Destinations off the platform. */
  destinations: RegExp[];
  /** ARI redirect endpoint with `{exten}`, e.g. PJSIP/sip:{exten}@carrier.example: what follows PJSIP/ is the Refer-To. */
  target: string;
}

export interface NodeRoute {
  node: string;
  patterns: RegExp[];
}

export interface HttpConfig {
  host: string;
  port: number;
  /** When set, every route but the health checks needs `Authorization: Bearer <token>`. */
  token: string | undefined;
}

export interface WebhookConfig {
  /** Receives every progress step of every transfer. */
  eventHook: string | undefined;
  /** Receives each transfer's final result. */
  actionHook: string | undefined;
  secret: string | undefined;
  timeoutMs: number;
  retries: number;
}

export type HaMode = 'off' | 'active-standby';

export interface HaConfig {
  mode: HaMode;
  /** The lease's lifetime: a dead active instance is replaced within about this long. */
  leaseMs: number;
  /** This instance's name in the lease (and the logs). */
  instanceId: string;
}

export interface Config {
  ari: AriConfig;
  registry: RegistryConfig;
  ha: HaConfig;
  http: HttpConfig;
  webhooks: WebhookConfig;
  shutdownGraceMs: number;
  /** Finished transfers kept for GET /transfers. */
  transferHistorySize: number;
  routing: RoutingMode;
  routingTimeoutMs: number;
  mohClass: string;
  transfer: TransferConfig;
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

// Every way a number can be wrong (not a number, a fraction, out of range)
// gets the same message, naming the range: the operator learns what to
// write from the one line, e.g. "WEBHOOK_RETRIES must be a whole number
// from 0 to 20".
const wholeNumber = (min: number, max: number, what = 'a whole number') => {
  const message = `must be ${what} from ${min} to ${max}`;
  return z.coerce.number({ error: message }).int(message).min(min, message).max(max, message);
};

const milliseconds = (min: number, max: number) => wholeNumber(min, max, 'a whole number of milliseconds');

const seconds = (min: number, max: number) => {
  const message = `must be a number of seconds from ${min} to ${max}`;
  return z.coerce
    .number({ error: message })
    .min(min, message)
    .max(max, message)
    .transform((v) => Math.round(v * 1000));
};

const regexList = (name: string) =>
  z.string().transform((v, ctx) => {
    try {
      return parseRegexList(v, name);
    } catch (err) {
      ctx.addIssue({ code: 'custom', message: `is invalid: ${(err as Error).message.replace(`${name}: `, '')}` });
      return z.NEVER;
    }
  });

const channelVars = z.string().transform((v, ctx) => {
  let parsed: unknown;
  try {
    parsed = JSON.parse(v);
  } catch {
    parsed = undefined;
  }
  const ok = parsed && typeof parsed === 'object' && !Array.isArray(parsed) && Object.values(parsed).every((x) => typeof x === 'string');
  if (!ok) {
    ctx.addIssue({ code: 'custom', message: 'must be a JSON object of strings, e.g. {"PJSIP_HEADER(add,X-Transfer)":"yes"}' });
    return z.NEVER;
  }
  return parsed as Record<string, string>;
});

const httpUrl = z
  .string()
  .refine((v) => URL.canParse(v) && /^https?:$/.test(new URL(v).protocol), 'must be an http(s) URL');

const ariUrl = z
  .string()
  .refine((v) => URL.canParse(v), 'must be a URL such as http://127.0.0.1:8088')
  .transform((v) => new URL(v))
  .refine((u) => u.protocol === 'http:' || u.protocol === 'https:', 'must use http:// or https://')
  .refine((u) => !u.username && !u.password, 'must not contain credentials; use ARI_USERNAME and ARI_PASSWORD')
  // Accept "http://host:8088", "http://host:8088/" and "http://host:8088/ari".
  .transform((u) => u.origin + u.pathname.replace(/\/+$/, '').replace(/\/ari$/, ''));

const redisUrl = z
  .string()
  .refine((v) => URL.canParse(v) && /^rediss?:$/.test(new URL(v).protocol), 'must be a redis:// or rediss:// URL, e.g. redis://127.0.0.1:6379');

// A host name or an IP address; an IPv6 address may be written in brackets,
// as in a URL ([::1]): the brackets are dropped, since listen() wants none.
const httpHost = z
  .string()
  .min(1)
  .transform((v, ctx) => {
    const inner = /^\[(.*)\]$/.exec(v)?.[1];
    if (inner === undefined) return v;
    if (isIP(inner) !== 6) {
      ctx.addIssue({ code: 'custom', message: 'must be a host name or an IP address; only an IPv6 address goes in brackets, e.g. [::1]' });
      return z.NEVER;
    }
    return inner;
  });

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
  // Default depends on ROUTING: see loadConfig.
  ARI_SUBSCRIBE_ALL: booleanFlag.optional(),
  ARI_REQUEST_TIMEOUT_MS: milliseconds(100, 60_000).default(5_000),
  ARI_RECONNECT_MAX_MS: milliseconds(100, 300_000).default(10_000),
  ARI_REST_TRANSPORT: z.enum(['websocket', 'http'], { error: 'must be websocket or http' }).default('websocket'),
  REGISTRY: z.enum(['memory', 'redis'], { error: 'must be memory or redis' }).default('memory'),
  REDIS_URL: redisUrl.optional(),
  REDIS_KEY_PREFIX: z.string().regex(/^[A-Za-z0-9_.:-]+$/, 'must be letters, digits, . _ : -').default('ari-transfer'),
  REDIS_TTL: seconds(3, 3600).prefault('30'),
  HA_MODE: z.enum(['off', 'active-standby'], { error: 'must be off or active-standby' }).default('off'),
  HA_LEASE_MS: milliseconds(1_000, 60_000).default(5_000),
  INSTANCE_ID: z.string().regex(/^[A-Za-z0-9_.:-]+$/, 'must be letters, digits, . _ : -').optional(),
  // Default: the host and port of ARI_URL (see loadConfig).
  ASTERISK_NODE: z.string().regex(/^[A-Za-z0-9_.:-]+$/, 'must be letters, digits, . _ : -').optional(),
  ROUTING: z.enum(['dial', 'none'], { error: 'must be dial or none' }).default('dial'),
  ROUTING_TIMEOUT: seconds(1, 600).prefault('60'),
  MOH_CLASS: z.string().regex(/^[A-Za-z0-9_-]+$/, 'must be a musiconhold.conf class name').default('default'),
  TRANSFER_DIAL_TEMPLATE: z
    .string()
    .refine((v) => v.includes('{exten}'), 'must contain {exten}, e.g. PJSIP/{exten} or PJSIP/{exten}@trunk')
    .refine((v) => /^[A-Za-z0-9_]+\//.test(v), 'must start with a channel technology, e.g. PJSIP/ or Local/')
    .default('PJSIP/{exten}'),
  TRANSFER_TIMEOUT: seconds(0.1, 600).prefault('30'),
  TRANSFER_HOLD_MODE: z.enum(['ring', 'moh'], { error: 'must be ring or moh' }).default('ring'),
  TRANSFER_CALLER_ID: z
    .enum(['transferee', 'transferer', 'none'], { error: 'must be transferee, transferer or none' })
    .default('transferee'),
  TRANSFER_CHANNEL_VARS: channelVars.optional(),
  TRANSFER_ALLOW: regexList('TRANSFER_ALLOW').optional(),
  TRANSFER_DENY: regexList('TRANSFER_DENY').optional(),
  TRANSFER_POLICY_URL: httpUrl.optional(),
  TRANSFER_POLICY_TIMEOUT_MS: milliseconds(50, 30_000).default(2_000),
  TRANSFER_IMMEDIATE_200_ENDPOINTS: regexList('TRANSFER_IMMEDIATE_200_ENDPOINTS').optional(),
  TRANSFER_NODE_ROUTES: z.string().transform((v, ctx) => {
    try {
      return parseNodeRoutes(v);
    } catch (err) {
      ctx.addIssue({ code: 'custom', message: `is invalid: ${(err as Error).message}` });
      return z.NEVER;
    }
  }).optional(),
  TRANSFER_RECALL: z
    .string()
    .transform((v, ctx): RecallSetting => {
      const setting = parseRecallSetting(v);
      if (typeof setting === 'string') {
        ctx.addIssue({ code: 'custom', message: setting });
        return z.NEVER;
      }
      return setting;
    })
    .prefault('off'),
  TRANSFER_RECALL_TIMEOUT: seconds(1, 600).prefault('20'),
  TRANSFER_CONNECTED_LINE: z.enum(['on', 'off'], { error: 'must be on or off' }).default('on'),
  TRANSFER_REFER_OUT_ENDPOINTS: regexList('TRANSFER_REFER_OUT_ENDPOINTS').optional(),
  TRANSFER_REFER_OUT_DESTINATIONS: regexList('TRANSFER_REFER_OUT_DESTINATIONS').optional(),
  // ARI redirect takes the channel's own technology only (422 otherwise); trunks are PJSIP.
  TRANSFER_REFER_OUT_TARGET: z
    .string()
    .refine((v) => v.includes('{exten}'), 'must contain {exten}, e.g. PJSIP/sip:{exten}@carrier.example')
    .refine((v) => /^PJSIP\/./.test(v), 'must start with PJSIP/ (ARI redirects a channel within its own technology), e.g. PJSIP/sip:{exten}@carrier.example')
    .optional(),
  INTERNODE_DIAL_TEMPLATE: z
    .string()
    .refine((v) => v.includes('{node}') && v.includes('{exten}'), 'must contain {node} and {exten}, e.g. PJSIP/{exten}@node-{node}')
    .default('PJSIP/{exten}@node-{node}'),
  HTTP_HOST: httpHost.default('127.0.0.1'),
  HTTP_PORT: wholeNumber(0, 65535, 'a port number').default(8080),
  HTTP_TOKEN: z.string().min(16, 'must be at least 16 characters').optional(),
  TRANSFER_EVENT_HOOK: httpUrl.optional(),
  TRANSFER_ACTION_HOOK: httpUrl.optional(),
  WEBHOOK_SECRET: z.string().min(16, 'must be at least 16 characters').optional(),
  WEBHOOK_TIMEOUT_MS: milliseconds(100, 60_000).default(5_000),
  WEBHOOK_RETRIES: wholeNumber(0, 20).default(5),
  SHUTDOWN_GRACE_MS: milliseconds(0, 600_000).default(10_000),
  TRANSFER_HISTORY_SIZE: wholeNumber(0, 100_000).default(100),
  LOG_LEVEL: z.enum(LOG_LEVELS, { error: `must be one of ${LOG_LEVELS.join(', ')}` }).default('info'),
});

/** `off`, `transferer` or a destination (TRANSFER_RECALL, or a policy webhook's `recall`); a string says what is wrong. */
export function parseRecallSetting(v: string): RecallSetting | string {
  if (v === 'off' || v === 'transferer') return { to: v };
  const check = checkDestination(v);
  if (!check.allowed) return `must be off, transferer or a destination to dial (${check.detail})`;
  return { to: 'destination', destination: v };
}

/** Reads the configuration from `env`; throws ConfigError naming each bad variable. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  // An empty variable counts as unset, as in most shells' ${VAR:-default}.
  const present = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ''));
  const parsed = envSchema.safeParse(present);
  if (!parsed.success) {
    // A value can fail several checks with the same message (-1.5: a fraction, below the minimum).
    throw new ConfigError([...new Set(parsed.error.issues.map((i) => `${String(i.path[0] ?? '?')} ${i.message}`))]);
  }
  const e = parsed.data;
  // An open port on a shared network must not show calls to anybody.
  if (!isLoopback(e.HTTP_HOST) && !e.HTTP_TOKEN) {
    throw new ConfigError([`HTTP_HOST ${e.HTTP_HOST} is not a loopback address: set HTTP_TOKEN to protect the HTTP API, or bind to a loopback address (127.0.0.1, ::1, localhost)`]);
  }
  if ((e.TRANSFER_EVENT_HOOK || e.TRANSFER_ACTION_HOOK) && !e.WEBHOOK_SECRET) {
    throw new ConfigError(['WEBHOOK_SECRET is required when TRANSFER_EVENT_HOOK or TRANSFER_ACTION_HOOK is set (webhook bodies are signed)']);
  }
  if (e.REGISTRY === 'redis' && !e.REDIS_URL) throw new ConfigError(['REDIS_URL is required when REGISTRY=redis']);
  if (e.HA_MODE === 'active-standby' && e.REGISTRY !== 'redis') {
    throw new ConfigError(['HA_MODE=active-standby needs REGISTRY=redis and REDIS_URL: the lease and the shared registry live in Redis']);
  }
  if (e.REGISTRY === 'memory' && e.REDIS_URL) {
    throw new ConfigError(['REDIS_URL is set but REGISTRY is memory: set REGISTRY=redis to share the registry, or unset REDIS_URL']);
  }
  const referOut = referOutOf(e.TRANSFER_REFER_OUT_ENDPOINTS, e.TRANSFER_REFER_OUT_DESTINATIONS, e.TRANSFER_REFER_OUT_TARGET);
  const node = e.ASTERISK_NODE ?? new URL(e.ARI_URL).host;
  return {
    registry: {
      kind: e.REGISTRY,
      node,
      redis: e.REDIS_URL ? { url: e.REDIS_URL, keyPrefix: e.REDIS_KEY_PREFIX, ttlMs: e.REDIS_TTL } : undefined,
    },
    ha: { mode: e.HA_MODE, leaseMs: e.HA_LEASE_MS, instanceId: e.INSTANCE_ID ?? `${hostname()}-${process.pid}` },
    ari: {
      url: e.ARI_URL,
      username: e.ARI_USERNAME,
      password: resolvePassword(e.ARI_PASSWORD, e.ARI_PASSWORD_FILE),
      app: e.ARI_APP,
      // Without routing, another application owns the calls: see all of them.
      subscribeAll: e.ARI_SUBSCRIBE_ALL ?? e.ROUTING === 'none',
      requestTimeoutMs: e.ARI_REQUEST_TIMEOUT_MS,
      reconnectMaxDelayMs: e.ARI_RECONNECT_MAX_MS,
      restTransport: e.ARI_REST_TRANSPORT,
    },
    http: { host: e.HTTP_HOST, port: e.HTTP_PORT, token: e.HTTP_TOKEN },
    webhooks: {
      eventHook: e.TRANSFER_EVENT_HOOK,
      actionHook: e.TRANSFER_ACTION_HOOK,
      secret: e.WEBHOOK_SECRET,
      timeoutMs: e.WEBHOOK_TIMEOUT_MS,
      retries: e.WEBHOOK_RETRIES,
    },
    shutdownGraceMs: e.SHUTDOWN_GRACE_MS,
    transferHistorySize: e.TRANSFER_HISTORY_SIZE,
    routing: e.ROUTING,
    routingTimeoutMs: e.ROUTING_TIMEOUT,
    mohClass: e.MOH_CLASS,
    transfer: {
      dialTemplate: e.TRANSFER_DIAL_TEMPLATE,
      timeoutMs: e.TRANSFER_TIMEOUT,
      holdMode: e.TRANSFER_HOLD_MODE,
      callerId: e.TRANSFER_CALLER_ID,
      channelVars: e.TRANSFER_CHANNEL_VARS ?? {},
      allow: e.TRANSFER_ALLOW ?? [],
      deny: e.TRANSFER_DENY ?? [],
      policyUrl: e.TRANSFER_POLICY_URL,
      policyTimeoutMs: e.TRANSFER_POLICY_TIMEOUT_MS,
      immediate200Endpoints: e.TRANSFER_IMMEDIATE_200_ENDPOINTS ?? [],
      internodeDialTemplate: e.INTERNODE_DIAL_TEMPLATE,
      // This node's own destinations are dialled here, as without routes.
      nodeRoutes: (e.TRANSFER_NODE_ROUTES ?? []).filter((r) => r.node !== node),
      recall: e.TRANSFER_RECALL,
      recallTimeoutMs: e.TRANSFER_RECALL_TIMEOUT,
      connectedLine: e.TRANSFER_CONNECTED_LINE === 'on',
      referOut,
    },
    logLevel: e.LOG_LEVEL,
  };
}

// The three go together: a REFER out needs the calls it applies to, the
// destinations, and the Refer-To; one alone is a mistake worth stopping for.
function referOutOf(endpoints: RegExp[] | undefined, destinations: RegExp[] | undefined, target: string | undefined): ReferOutConfig | undefined {
  if (!endpoints && !destinations && !target) return undefined;
  const missing = [
    ...(endpoints ? [] : ['TRANSFER_REFER_OUT_ENDPOINTS']),
    ...(destinations ? [] : ['TRANSFER_REFER_OUT_DESTINATIONS']),
    ...(target ? [] : ['TRANSFER_REFER_OUT_TARGET']),
  ];
  if (missing.length > 0 || !endpoints || !destinations || !target) {
    throw new ConfigError(missing.map((name) => `${name} is required when any TRANSFER_REFER_OUT_* variable is set (REFER out needs the trunks, the destinations and the Refer-To)`));
  }
  return { endpoints, destinations, target };
}

const LOOPBACK = new BlockList();
LOOPBACK.addSubnet('127.0.0.0', 8, 'ipv4');
LOOPBACK.addAddress('::1', 'ipv6');
LOOPBACK.addSubnet('::ffff:127.0.0.0', 104, 'ipv6'); // IPv4-mapped 127.0.0.0/8

/** `localhost`, 127.0.0.0/8, or ::1 in any spelling (also in brackets: [::1]). */
export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[(.*)\]$/, '$1');
  if (h.toLowerCase() === 'localhost') return true;
  const family = isIP(h);
  return family !== 0 && LOOPBACK.check(h, family === 4 ? 'ipv4' : 'ipv6');
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

/** The configuration as it may be logged: no secrets, patterns as text. */
export function describeConfig(config: Config): Record<string, unknown> {
  const t = config.transfer;
  const sources = (list: RegExp[]) => list.map((r) => r.source);
  const hookUrl = (u: string | undefined) => (u ? new URL(u).origin + new URL(u).pathname : undefined);
  return {
    ari: { ...config.ari, password: '[redacted]' },
    registry: { ...config.registry, redis: config.registry.redis && { ...config.registry.redis, url: redactUrl(config.registry.redis.url) } },
    ha: config.ha,
    http: { ...config.http, token: config.http.token ? '[redacted]' : undefined },
    webhooks: {
      ...config.webhooks,
      eventHook: hookUrl(config.webhooks.eventHook),
      actionHook: hookUrl(config.webhooks.actionHook),
      secret: config.webhooks.secret ? '[redacted]' : undefined,
    },
    shutdownGraceMs: config.shutdownGraceMs,
    transferHistorySize: config.transferHistorySize,
    routing: config.routing,
    routingTimeoutMs: config.routingTimeoutMs,
    mohClass: config.mohClass,
    transfer: {
      ...t,
      allow: sources(t.allow),
      deny: sources(t.deny),
      immediate200Endpoints: sources(t.immediate200Endpoints),
      nodeRoutes: t.nodeRoutes.map((r) => ({ node: r.node, patterns: sources(r.patterns) })),
      referOut: t.referOut && { ...t.referOut, endpoints: sources(t.referOut.endpoints), destinations: sources(t.referOut.destinations) },
      // A webhook URL may carry credentials: log where it points only.
      policyUrl: hookUrl(t.policyUrl),
    },
    logLevel: config.logLevel,
  };
}

/** `b=2\d{3},3\d{3};c=4\d{3}`: per node, the destinations (anchored regular expressions, as TRANSFER_ALLOW) that live there. */
export function parseNodeRoutes(text: string): NodeRoute[] {
  return text
    .split(';')
    .map((part) => part.trim())
    .filter(Boolean)
    .map((part) => {
      const eq = part.indexOf('=');
      const node = eq > 0 ? part.slice(0, eq).trim() : '';
      if (!/^[A-Za-z0-9_.:-]+$/.test(node)) throw new Error(`"${part}" is not <node>=<patterns>, e.g. b=2\\d{3}`);
      const patterns = parseRegexList(part.slice(eq + 1), 'TRANSFER_NODE_ROUTES').map((re) => re);
      if (patterns.length === 0) throw new Error(`node ${node} has no pattern`);
      return { node, patterns };
    });
}

/** A URL without its password (a Redis URL may carry one). */
function redactUrl(url: string): string {
  const u = new URL(url);
  if (u.password) u.password = 'redacted';
  return u.toString();
}

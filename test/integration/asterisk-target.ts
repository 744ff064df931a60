// Which Asterisk the integration suite talks to, as the runner
// (scripts/test-integration.ts) hands it over in the environment.

/** Where the SIPp phones listen (the contacts of asterisk-config/pjsip.conf's test profile). */
export interface PhonePorts {
  '1001': number;
  '1002': number;
  '1003': number;
  '1004': number;
  /** 1002's second (consultation) call. */
  consult: number;
  /** TCP socket between the two halves of 1002 in attended scenarios (sipp -3pcc). */
  threePcc: number;
}

export interface AsteriskTarget {
  ariUrl: string;
  username: string;
  password: string;
  app: string;
  sipHost: string;
  sipPort: number;
  phones: PhonePorts;
  /** argv prefix of the Asterisk CLI (`asterisk -C conf`), when the suite may control the instance. */
  cli?: string[];
  /** The RTP port range, when the suite chose it. */
  rtpPorts?: { start: number; end: number };
  /** Asterisk's pid file, when the suite started it. */
  pidFile?: string;
}

/** The ARI user and application of asterisk-config/ari.conf and extensions.conf. */
export const CONFIG_DEFAULTS = { username: 'ari-transfer', password: 'change-me', app: 'ari-transfer' } as const;

/** asterisk-config/pjsip.conf as shipped. */
export const DEFAULT_PHONE_PORTS: PhonePorts = { '1001': 5061, '1002': 5062, '1003': 5063, '1004': 5064, consult: 5072, threePcc: 5099 };

export function targetFromEnv(env: NodeJS.ProcessEnv = process.env): AsteriskTarget | undefined {
  if (!env.ASTERISK_ARI_URL) return undefined;
  return {
    ariUrl: env.ASTERISK_ARI_URL.replace(/\/+$/, '').replace(/\/ari$/, ''),
    username: env.ASTERISK_ARI_USERNAME ?? CONFIG_DEFAULTS.username,
    password: env.ASTERISK_ARI_PASSWORD ?? CONFIG_DEFAULTS.password,
    app: env.ASTERISK_ARI_APP ?? CONFIG_DEFAULTS.app,
    sipHost: env.ASTERISK_SIP_HOST ?? '127.0.0.1',
    sipPort: Number(env.ASTERISK_SIP_PORT ?? 5060),
    phones: env.ASTERISK_PHONE_PORTS ? (JSON.parse(env.ASTERISK_PHONE_PORTS) as PhonePorts) : DEFAULT_PHONE_PORTS,
    cli: env.ASTERISK_CLI ? (JSON.parse(env.ASTERISK_CLI) as string[]) : undefined,
    pidFile: env.ASTERISK_PID_FILE,
    rtpPorts: env.ASTERISK_RTP_PORTS ? { start: Number(env.ASTERISK_RTP_PORTS.split('-')[0]), end: Number(env.ASTERISK_RTP_PORTS.split('-')[1]) } : undefined,
  };
}

/** GET /ari/asterisk/ping: reachable with these credentials? */
export async function pingAri(t: Pick<AsteriskTarget, 'ariUrl' | 'username' | 'password'>): Promise<string | undefined> {
  try {
    const res = await fetch(`${t.ariUrl}/ari/asterisk/ping`, {
      headers: { authorization: `Basic ${Buffer.from(`${t.username}:${t.password}`).toString('base64')}` },
      signal: AbortSignal.timeout(3000),
    });
    return res.ok ? undefined : `ARI answered ${res.status}`;
  } catch (err) {
    return `ARI unreachable (${(err as Error).cause instanceof Error ? ((err as Error).cause as Error).message : (err as Error).message})`;
  }
}

// Two Asterisk nodes for the tests of calls between nodes: "a" and "b",
// both started here from the local install (ASTERISK_PREFIX, or `asterisk`
// on the PATH), each with a copy of asterisk-config/ on its own free ports
// (local-asterisk.ts) plus a SIP trunk to the other, written from
// asterisk-config/pjsip-internode.conf.sample (the sample an operator
// copies, so the tests prove it). They are independent of the instance the
// runner starts for the other tests, which stays as it is.
//
//   const nodes = await startNodes();    // in beforeAll
//   nodes.a.target / nodes.b.target      // ARI, SIP and phone ports of each
//   await nodes.b.asterisk.stop();       // node b down; .restart() brings it back
//   await nodes.dispose();               // in afterAll: both stopped, temp dirs removed
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe } from 'vitest';
import { CONFIG_DEFAULTS, type AsteriskTarget } from './asterisk-target.js';
import { choosePorts, findAsterisk, LocalAsterisk, type InstancePorts } from './local-asterisk.js';

const CONFIG_DIR = fileURLToPath(new URL('../../asterisk-config', import.meta.url));
export const INTERNODE_SAMPLE = join(CONFIG_DIR, 'pjsip-internode.conf.sample');

/** Why the multi-node tests cannot run here, or undefined when they can. */
export const noNodes: string | undefined = (() => {
  try {
    const install = findAsterisk();
    return typeof install === 'string' ? install : undefined;
  } catch (err) {
    return (err as Error).message;
  }
})();
/** `describe`, or `describe.skip` when there is no local Asterisk to start two nodes from. */
export const onTwoNodes = noNodes ? describe.skip : describe;

export interface Node {
  /** "a" or "b": also the name of its trunk endpoint on the other node (PJSIP/<exten>@node-b). */
  name: string;
  /** The endpoint, on this node, of the trunk to the other node. */
  trunk: string;
  asterisk: LocalAsterisk;
  target: AsteriskTarget;
}

export interface Nodes {
  a: Node;
  b: Node;
  dispose(): Promise<void>;
}

/**
 * The trunk part of pjsip.conf for a node: the sample with its peer block
 * renamed after the peer and pointed at the peer's SIP port on loopback,
 * and included from pjsip.conf.
 */
export function internodeConfig(peerName: string, peerSipPort: number): string {
  const sample = readFileSync(INTERNODE_SAMPLE, 'utf8');
  const replacements: [RegExp, string][] = [
    [/^\[node-b\]\(/gm, `[${peerName}](`],
    [/^aors = node-b$/m, `aors = ${peerName}`],
    [/^endpoint = node-b$/m, `endpoint = ${peerName}`],
    [/^contact = sip:node-b@192\.0\.2\.20:5060$/m, `contact = sip:${peerName}@127.0.0.1:${peerSipPort}`],
    [/^match = 192\.0\.2\.20:5060$/m, `match = 127.0.0.1:${peerSipPort}`],
  ];
  let text = sample;
  for (const [pattern, value] of replacements) {
    if (!pattern.test(text)) throw new Error(`${INTERNODE_SAMPLE}: expected a line matching ${pattern}; the sample changed?`);
    pattern.lastIndex = 0;
    text = text.replace(pattern, value);
  }
  return text;
}

function addTrunk(etc: string, peerName: string, peerSipPort: number): void {
  writeFileSync(join(etc, 'pjsip-internode.conf'), internodeConfig(peerName, peerSipPort));
  const pjsip = join(etc, 'pjsip.conf');
  const text = readFileSync(pjsip, 'utf8');
  const include = /^;#include "pjsip-internode\.conf"$/m;
  if (!include.test(text)) throw new Error(`${pjsip}: expected the commented #include "pjsip-internode.conf"; asterisk-config changed?`);
  writeFileSync(pjsip, text.replace(include, '#include "pjsip-internode.conf"'));
}

/** Starts nodes a and b, each with the trunk to the other; both up (ARI answers) when it resolves. */
export async function startNodes(): Promise<Nodes> {
  const install = findAsterisk();
  if (typeof install === 'string') throw new Error(`no local Asterisk to start two nodes from: ${install}`);
  // Both nodes' ports first: each node's config names the other's SIP port.
  const taken: number[] = [];
  const ports: Record<'a' | 'b', InstancePorts> = { a: await choosePorts(taken), b: await choosePorts(taken) };
  const started: LocalAsterisk[] = [];
  const dispose = async () => {
    await Promise.all(started.map((a) => a.dispose()));
  };
  try {
    const node = async (name: 'a' | 'b', peer: 'a' | 'b'): Promise<Node> => {
      const asterisk = await LocalAsterisk.start(install, CONFIG_DIR, {
        ports: ports[name],
        configure: (etc) => addTrunk(etc, `node-${peer}`, ports[peer].sip),
      });
      started.push(asterisk);
      return { name, trunk: `node-${peer}`, asterisk, target: { ...asterisk.target, cli: JSON.parse(asterisk.env.ASTERISK_CLI!) as string[] } };
    };
    const [a, b] = await Promise.allSettled([node('a', 'b'), node('b', 'a')]);
    if (a.status === 'rejected') throw a.reason;
    if (b.status === 'rejected') throw b.reason;
    return { a: a.value, b: b.value, dispose };
  } catch (err) {
    await dispose();
    throw err;
  }
}

/** The environment of a node's service: its own ARI, routing, the shared Redis registry under the node's name. */
export function nodeServiceEnv(node: Node, redisUrl: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    ARI_URL: node.target.ariUrl,
    ARI_USERNAME: CONFIG_DEFAULTS.username,
    ARI_PASSWORD: CONFIG_DEFAULTS.password,
    ARI_APP: CONFIG_DEFAULTS.app,
    ROUTING: 'dial',
    REGISTRY: 'redis',
    REDIS_URL: redisUrl,
    ASTERISK_NODE: node.name,
    ...extra,
  };
}

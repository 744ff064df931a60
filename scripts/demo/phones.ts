// The demo's phones. Their PJSIP endpoints are named after their extensions,
// as on a small PBX, so that the dial template PJSIP/{exten} reaches them.

export interface Phone {
  /** Short name used in the ladder. */
  name: string;
  /** Extension, which is also the PJSIP endpoint name. */
  ext: string;
  /** Caller id name the phone sends. */
  display: string;
}

export const alice: Phone = { name: 'alice', ext: '1001', display: 'Alice' };
export const bob: Phone = { name: 'bob', ext: '1002', display: 'Bob' };
export const carol: Phone = { name: 'carol', ext: '1003', display: 'Carol' };
export const dave: Phone = { name: 'dave', ext: '1004', display: 'Dave' };

export const PHONES: readonly Phone[] = [alice, bob, carol, dave];

/** The phone behind a PJSIP endpoint (or an extension), if it is one of ours. */
export function phoneOfEndpoint(endpoint: string): string | undefined {
  return PHONES.find((p) => p.ext === endpoint)?.name;
}

/** `PJSIP/1002-00000001` → `1002`; other technologies keep their resource. */
export function endpointOfChannelName(name: string): string {
  const slash = name.indexOf('/');
  const resource = slash >= 0 ? name.slice(slash + 1) : name;
  return resource.replace(/-[0-9a-f]{8}(;[12])?$/, '');
}

/** The phone a channel belongs to, from its name; the endpoint itself when unknown. */
export function phoneOfChannelName(name: string, lookup: (endpoint: string) => string | undefined = phoneOfEndpoint): string {
  const endpoint = endpointOfChannelName(name);
  return lookup(endpoint) ?? endpoint;
}

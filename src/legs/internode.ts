// What the instances of two Asterisk nodes agree on about the call between
// them that joins a transfer's two calls (asterisk-config/extensions.conf,
// [from-internode], and pjsip-internode.conf.sample).

/** The Stasis argument of calls arriving from another node ([from-internode]): never routed as a phone's call. */
export const INTERNODE_ARG = 'internode';

/** The extension dialled on the other node: it names the transfer the call is for. */
export function internodeExten(transferId: string): string {
  return `xfer-${transferId}`;
}

/** The transfer a call from another node is for, read from the extension it dialled. */
export function transferOfInternodeExten(exten: string | undefined): string | undefined {
  return exten === undefined ? undefined : /^xfer-([0-9a-f]+)$/.exec(exten)?.[1];
}

// Import rules for src/, checked by `npm run check:deps` (dependency-cruiser).
// Dependencies go one way, from the top of this table to the bottom:
//
//   main.ts                                  entry point
//   service.ts                               wiring
//   ha/                                      the active/standby lease
//   http/                                    the HTTP API
//   webhooks/, metrics.ts                    observers of transfers
//   calls/, transfer/                        never import each other
//   legs/                                    dialling, watching, hanging up legs
//   registry/
//   ari/, redis/                             the connections to Asterisk and to Redis
//   config.ts, destination-syntax.ts, logger.ts, regex-list.ts, untrusted-text.ts
//
// A layer may import itself and the layers listed for it below; type-only
// imports count. No cycles anywhere, not even inside a layer.

const LAYERS = {
  foundation: '^src/(config|destination-syntax|logger|regex-list|untrusted-text)\\.ts$',
  ari: '^src/ari/',
  redis: '^src/redis/',
  registry: '^src/registry/',
  legs: '^src/legs/',
  calls: '^src/calls/',
  transfer: '^src/transfer/',
  observers: ['^src/webhooks/', '^src/metrics\\.ts$'],
  http: '^src/http/',
  ha: '^src/ha/',
  service: '^src/service\\.ts$',
  main: '^src/main\\.ts$',
};

const MAY_IMPORT = {
  foundation: [],
  ari: ['foundation'],
  redis: ['foundation'],
  registry: ['foundation', 'ari', 'redis'],
  legs: ['foundation', 'ari', 'registry'],
  calls: ['foundation', 'ari', 'registry', 'legs'],
  transfer: ['foundation', 'ari', 'registry', 'legs'],
  observers: ['foundation', 'ari', 'registry', 'legs', 'calls', 'transfer'],
  http: ['foundation', 'ari', 'registry', 'legs', 'calls', 'transfer', 'observers'],
  service: ['foundation', 'ari', 'redis', 'registry', 'legs', 'calls', 'transfer', 'observers', 'http'],
  ha: ['foundation', 'redis'],
  main: ['foundation', 'ari', 'redis', 'registry', 'legs', 'calls', 'transfer', 'observers', 'http', 'service', 'ha'],
};

const paths = (layer) => [LAYERS[layer]].flat();

const layerRules = Object.keys(LAYERS).map((layer) => ({
  name: `layer-${layer}`,
  severity: 'error',
  comment: `${layer} may import only ${['itself', ...MAY_IMPORT[layer]].join(', ')}`,
  from: { path: paths(layer) },
  to: { path: '^src/', pathNot: [layer, ...MAY_IMPORT[layer]].flatMap(paths) },
}));

module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      severity: 'error',
      comment: 'an import cycle: one of these modules belongs below the other',
      from: {},
      to: { circular: true },
    },
    ...layerRules,
    {
      name: 'no-layer',
      severity: 'error',
      comment: 'a module in src/ that is in no layer: give it one in .dependency-cruiser.cjs',
      from: { path: '^src/', pathNot: Object.keys(LAYERS).flatMap(paths) },
      to: {},
    },
    {
      name: 'not-to-tests-or-tools',
      severity: 'error',
      comment: 'src/ must not import test/, bench/ or scripts/ code',
      from: { path: '^src/' },
      to: { path: '^(test|bench|scripts)/' },
    },
    {
      name: 'not-to-unresolvable',
      severity: 'error',
      comment: 'an import that cannot be resolved cannot be checked against the layers',
      from: {},
      to: { couldNotResolve: true },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    // Type-only imports are dependencies too: they tie the layers together
    // just the same.
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
  },
};

/**
 * The layering of docs/architecture.md, enforced: imports point down, never up, and a folder is entered only
 * through its index.ts.
 */
const layers = [
  'crypto',
  'files',
  'formats',
  'keys',
  'store',
  'kms',
  'fields',
  'e2ee',
  'tls',
  'server',
  'client',
  'cli',
  'web',
];
const rank = {
  crypto: 0,
  files: 1,
  formats: 1,
  keys: 2,
  store: 3,
  kms: 4,
  fields: 4,
  e2ee: 4,
  tls: 4,
  server: 5,
  client: 5,
  cli: 6,
  web: 6,
};
const upward = [];
for (const from of layers) {
  const higher = layers.filter((to) => rank[to] > rank[from] || (rank[to] === rank[from] && to !== from));
  if (higher.length === 0) continue;
  upward.push({
    name: `no-upward-from-${from}`,
    comment: `${from} may import only from layers below it (docs/architecture.md)`,
    severity: 'error',
    from: { path: `^src/${from}/` },
    to: { path: `^src/(${higher.join('|')})/` },
  });
}

module.exports = {
  forbidden: [
    ...upward,
    {
      name: 'enter-folders-through-index',
      comment: 'reach into another layer only through its index.ts',
      severity: 'error',
      from: { path: '^src/([^/]+)/' },
      to: { path: '^src/([^/]+)/.+', pathNot: ['^src/$1/', '^src/[^/]+/index\\.ts$'] },
    },
    {
      name: 'no-node-crypto-outside-runtime',
      comment: 'platform crypto is reached only through src/crypto/runtime',
      severity: 'error',
      from: { path: '^src/', pathNot: ['^src/crypto/runtime/node\\.ts$', '^src/cli/'] },
      to: { path: '^crypto$', dependencyTypes: ['core'] },
    },
    {
      name: 'no-circular',
      severity: 'error',
      from: {},
      to: { circular: true },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['enseal-source', 'import', 'node', 'default'],
    },
  },
};

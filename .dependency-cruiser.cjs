// Module seams (../shared/STYLE.md): capabilities import one way, no module imports itself round a cycle,
// and the pure domain rules import nothing of Azure. Run by `npm run lint` (depcruise).

/**
 * Layers from the bottom up: a module may import from its own layer and from those below, never from those
 * above. The vocabulary and the base pieces (errors, clock, ids, paging, configuration) are at the bottom;
 * the composition root, the triggers and the local host at the top.
 */
const KEY_CUSTODY = '(sealedBox|keyProvider|keyProviders|localKeyProvider|keyVaultKeyProvider)\\.ts$';

const LAYERS = [
  ['^shared/vocabulary/', '^shared/(errors|errorDetails|clock|ids|paging|config)\\.ts$'],
  ['^shared/storage/'],
  // Key custody: the sealed box and the tenant key providers of each geography, which residency hands out.
  [`^shared/crypto/${KEY_CUSTODY}`],
  ['^shared/residency/'],
  [`^shared/crypto/(?!${KEY_CUSTODY})`],
  ['^shared/auth/'],
  ['^shared/audit/'],
  // What is disclosed about each category (register and access report): words, retention, geography.
  ['^shared/retention/', '^shared/transparency/(categoryDisclosure|disclosureHtml|htmlText)\\.ts$'],
  ['^shared/records/'],
  ['^shared/exports/'],
  ['^shared/requests/'],
  // Alert data requests: extractions through the export packages and links, deletions through retention.
  ['^shared/alertRequests/'],
  ['^shared/purge/'],
  // Operator access: grants, and reads of records under them.
  ['^shared/operatorAccess/'],
  // Transparency: the processing register, built from every table the service enforces.
  ['^shared/transparency/(?!(categoryDisclosure|disclosureHtml|htmlText)\\.ts$)'],
  // Residency moves: they copy every capability's rows, so they sit above all of them.
  ['^shared/migration/'],
  ['^shared/http/'],
  ['^shared/hosting/', '^shared/health/'],
  ['^shared/composition\\.ts$'],
  ['^functions/'],
  ['^local/'],
];

const COMPOSITION = '^shared/composition\\.ts$';

const upward = LAYERS.flatMap((layer, index) => {
  const above = LAYERS.slice(index + 1).flat();
  if (above.length === 0) return [];
  return layer.flatMap((from) => [
    {
      name: `one-way:${from}`,
      comment:
        'A capability imports only from its own layer and those below it (.dependency-cruiser.cjs LAYERS).',
      severity: 'error',
      from: { path: from },
      to: { path: above, pathNot: COMPOSITION },
    },
    {
      name: `services-types-only:${from}`,
      comment: 'Below the composition root, its Services are imported as a type only (STYLE.md).',
      severity: 'error',
      from: { path: from },
      to: { path: above.includes(COMPOSITION) ? COMPOSITION : '^$', dependencyTypesNot: ['type-only'] },
    },
  ]);
});

/** Pure rules of the domain: plain functions of their inputs, free of the SDKs and the Functions host. */
const DOMAIN = [
  '^shared/vocabulary/',
  '^shared/requests/(lifecycle|dueDates|dataSubjectRequest|stepFailure)\\.ts$',
  '^shared/retention/(retentionPolicy|alertAnonymisation|categoryRetention)\\.ts$',
  '^shared/transparency/(categoryDisclosure|disclosureHtml|htmlText|processingRegister|registerHtml)\\.ts$',
  '^shared/residency/geography\\.ts$',
  '^shared/migration/migrationJob\\.ts$',
  '^shared/operatorAccess/accessRequest\\.ts$',
  '^shared/alertRequests/alertDataRequest\\.ts$',
  '^shared/exports/redaction\\.ts$',
  '^shared/records/(personalDataEvent|personalDataRecord|systemLogPseudonyms)\\.ts$',
  '^shared/audit/(auditChain|auditEvent)\\.ts$',
];

module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      comment: 'Modules that import each other round a cycle cannot be understood, or split, one at a time.',
      severity: 'error',
      from: {},
      to: { circular: true },
    },
    {
      name: 'domain-without-azure',
      comment: 'Domain rules are plain functions: no @azure/* import (storage adapters sit beside them).',
      severity: 'error',
      from: { path: DOMAIN },
      to: { path: '^@azure/|node_modules/@azure/' },
    },
    ...upward,
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsConfig: { fileName: 'tsconfig.json' },
    // Type-only imports count: a cycle of types is still a cycle of meaning.
    tsPreCompilationDeps: true,
  },
};

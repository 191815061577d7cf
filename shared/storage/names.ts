// Every table, queue and container name of the service, defined once.

/** Tables in the global account. */
export const GLOBAL_TABLES = {
  tenants: 'tenants',
  /** Residency moves: PartitionKey the tenant id, RowKey the migration id (newest first). */
  migrations: 'migrations',
  /** Operator access requests still pending or active: ids and end times only (the expiry timer reads it). */
  operatorAccessOpen: 'operatorAccessOpen',
} as const;

/** Tables in each geography's account; every partition key starts with the tenant id. */
export const TABLES = {
  requests: 'requests',
  audit: 'audit',
  idempotency: 'idempotency',
  /** Records by subject: PartitionKey `${tenantId}_${subjectKey}`; the subject's wrapped data key is row `~key`. */
  records: 'records',
  /** Lookups from record ids, device names and subject identifiers to subjects (keys are HMACs). */
  recordLookup: 'recordLookup',
  /** Per-tenant secrets, wrapped by the tenant key (the pseudonymisation HMAC key). */
  tenantSecrets: 'tenantSecrets',
  restrictions: 'restrictions',
  /** What falls due when: PartitionKey `${tenantId}_x${yyyymm}`, RowKey starting with the due day. */
  expiry: 'expiry',
  /** Operator access requests for the tenant (newest first) and its policy (`~policy`). */
  operatorAccess: 'operatorAccess',
  /** Records held per category: PartitionKey `${tenantId}_counts`, one row per shard (recordCounts.ts). */
  recordCounts: 'recordCounts',
  /** Published terms and privacy statement versions: PartitionKey the tenant id, newest first (termsStore.ts). */
  terms: 'terms',
  /** Alert data requests of the tenant's security admins (newest first); device names as given. */
  alertDataRequests: 'alertDataRequests',
} as const;

/** Queues live in the global account; their messages name a tenant, never personal data, except events. */
export const QUEUES = {
  personalDataEvents: 'personal-data-events',
  personalDataEventsPoison: 'personal-data-events-poison',
  dsrWork: 'dsr-work',
  dsrWorkPoison: 'dsr-work-poison',
  retentionWork: 'retention-work',
  retentionWorkPoison: 'retention-work-poison',
  /** Residency moves, one message per slice of a migration's work (ids only). */
  residencyWork: 'residency-work',
  residencyWorkPoison: 'residency-work-poison',
  /** Alert data requests' extraction or deletion (ids only). */
  alertDataWork: 'alert-data-work',
  alertDataWorkPoison: 'alert-data-work-poison',
} as const;

/** Blob containers in each geography's account. */
export const CONTAINERS = {
  exportPackages: 'export-packages',
  /** Events set aside as invalid, sealed in their tenant's geography (never in the global account). */
  poisonedEvents: 'poisoned-events',
} as const;

export const poisonQueueOf = (queue: string): string => `${queue}-poison`;

/** The app setting that names the account holding the queues (what queue triggers bind to). */
export const QUEUE_CONNECTION = 'STORAGE_GLOBAL';

// Table keys of the records capability (SPEC §4), defined once; every key starts with the tenant id.

/**
 * The partition holding one data subject's records and, in row `~key`, the subject's wrapped data key:
 * `${tenantId}_${subjectKey}`. Tenant ids never contain `_`, so the tenant part cannot be ambiguous.
 */
export function recordsPartition(tenantId: string, subjectKey: string): string {
  return `${tenantId}_${subjectKey}`;
}

/** A record's row in its subject's partition; rows sort by category, so one category is a key range. */
export const recordRowKey = (category: string, recordKey: string): string => `${category}_${recordKey}`;

/** The category a record row belongs to (the part of its RowKey before the record HMAC). */
export const categoryOfRow = (recordRow: string): string => recordRow.slice(0, recordRow.indexOf('_'));

/** The record HMAC of a record row. */
export const recordKeyOfRow = (recordRow: string): string => recordRow.slice(recordRow.indexOf('_') + 1);

/**
 * Rows of a subject's partition that are not records; `~` sorts after every category, so records are
 * `RowKey lt '~'`. The subject's data key is `~key` (subjectKeys.ts).
 */
export const subjectRows = {
  /** `~id_<identifier HMAC>`: an identifier the subject was seen with (objectId, upn or email). */
  identifier: (identifierKey: string) => `~id_${identifierKey}`,
  identifierPrefix: '~id_',
  /** `~pkg_<request id>_<attempt>`: an export package of the subject, its key wrapped by the data key. */
  package: (requestId: string, attempt: string) => `~pkg_${requestId}_${attempt}`,
  packagePrefix: (requestId = '') => `~pkg_${requestId}`,
  /** In an alias's own subject: the object subject it was merged into. */
  linked: '~linked',
  /** In an object subject: an alias's own subject merged into it (erasure and audit matching find it). */
  merged: (aliasSubjectKey: string) => `~merged_${aliasSubjectKey}`,
  mergedPrefix: '~merged_',
} as const;

/** Records only: every row of a subject's partition below `~`. */
export const RECORDS_ONLY = "RowKey lt '~'";

/**
 * Rows of table `recordLookup`. Every part after the tenant id is a per-tenant HMAC, so no key names anyone;
 * record-id and identifier lookups are spread over 256 partitions each to keep partitions small.
 */
export const lookupKeys = {
  /**
   * alias (upn or email) HMAC → the subjects it was seen with: one row per pair, found by RowKey prefix
   * (subjectIdentity.ts says which is the current holder).
   */
  identifier: (tenantId: string, identifierKey: string) => ({
    partitionKey: `${tenantId}_i${identifierKey.slice(0, 2)}`,
    prefix: `${identifierKey}_`,
  }),
  /** record HMAC (category and record id) → its subject key, and the deletions known for the record. */
  record: (tenantId: string, recordKey: string) => ({
    partitionKey: `${tenantId}_r${recordKey.slice(0, 2)}`,
    rowKey: recordKey,
  }),
  /** device HMAC → the records reported with that device name (partition per device). */
  device: (tenantId: string, deviceKey: string, subjectKey: string, recordRow: string) => ({
    partitionKey: `${tenantId}_d${deviceKey}`,
    rowKey: `${subjectKey}_${recordRow}`,
  }),
};

/** OData filter for the rows of a partition whose RowKey starts with a prefix. */
export function rowKeyRange(partitionKey: string, prefix: string): string {
  // The next string after every string with this prefix: its last character incremented.
  const end = prefix.slice(0, -1) + String.fromCharCode(prefix.charCodeAt(prefix.length - 1) + 1);
  return `PartitionKey eq '${escape(partitionKey)}' and RowKey ge '${escape(prefix)}' and RowKey lt '${escape(end)}'`;
}

const escape = (value: string) => value.replace(/'/g, "''");

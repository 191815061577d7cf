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

/**
 * Rows of table `recordLookup`. Every part after the tenant id is a per-tenant HMAC, so no key names anyone;
 * record-id and identifier lookups are spread over 256 partitions each to keep partitions small.
 */
export const lookupKeys = {
  /** identifier HMAC → subject keys it was seen with: one row per pair, found by RowKey prefix. */
  identifier: (tenantId: string, identifierKey: string) => ({
    partitionKey: `${tenantId}_i${identifierKey.slice(0, 2)}`,
    prefix: `${identifierKey}_`,
  }),
  /** record HMAC (category and record id) → its subject key, or a tombstone for a delete that came first. */
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

// One tenant's footprint in a geography account, read page by page: every row of a table whose partition key
// is the tenant id or starts with `<tenantId>_`, and every blob of a container under `<tenantId>/`. Rows are
// read without type conversion (each value with its Edm type), so that writing one back stores exactly
// what was read. Digests are SHA-256 over a canonical form: two accounts holding the same rows give the
// same digest whatever their ETags and timestamps.
import { createHash, type Hash } from 'node:crypto';

import { odata, type TableClient, type TransactionAction } from '@azure/data-tables';
import type { ContainerClient } from '@azure/storage-blob';

import { submitInBatches } from './tableBatches';

/** A row as stored, keys and typed values only (no ETag, no timestamp, no OData annotations). */
export type StoredRow = { partitionKey: string; rowKey: string } & Record<string, unknown>;

/** Exactly the tenant's partitions: `<tid>` itself and `<tid>_…` (`` ` `` follows `_`), no other tenant's. */
export const tenantPartitionFilter = (tenantId: string): string =>
  odata`PartitionKey eq ${tenantId} or (PartitionKey ge ${`${tenantId}_`} and PartitionKey lt ${`${tenantId}\``})`;

/** A blob prefix that holds exactly one tenant's blobs. */
export const tenantBlobPrefix = (tenantId: string): string => `${tenantId}/`;

export interface RowPage {
  rows: StoredRow[];
  /** Where the next page starts; undefined after the last. */
  continuationToken?: string | undefined;
}

/** The tenant's rows, a page at a time, from `continuationToken` (a page's token resumes after it). */
export async function* tenantRowPages(
  table: TableClient,
  tenantId: string,
  continuationToken?: string,
  pageSize = 1000,
  select?: string[],
): AsyncGenerator<RowPage> {
  const pages = table
    .listEntities<Record<string, unknown>>({
      queryOptions: { filter: tenantPartitionFilter(tenantId), ...(select ? { select } : {}) },
      disableTypeConversion: true,
    })
    .byPage({ maxPageSize: pageSize, ...(continuationToken ? { continuationToken } : {}) });
  for await (const page of pages) {
    yield { rows: page.map(storedRow), continuationToken: page.continuationToken };
  }
}

/** The rows of one partition, in row key order. */
export async function* partitionRows(table: TableClient, partitionKey: string): AsyncGenerator<StoredRow> {
  for await (const entity of table.listEntities<Record<string, unknown>>({
    queryOptions: { filter: odata`PartitionKey eq ${partitionKey}` },
    disableTypeConversion: true,
  })) {
    yield storedRow(entity);
  }
}

export function storedRow(entity: Record<string, unknown>): StoredRow {
  const row: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(entity)) {
    if (name === 'etag' || name === 'timestamp' || name.startsWith('odata.')) continue;
    row[name] = value;
  }
  return row as StoredRow;
}

/**
 * Deletes the tenant's rows of a table, a page at a time in entity-group transactions, until done or until
 * `until` (a performance.now() time) has passed between pages. What it deleted is gone, so a later call
 * simply lists again from the start; memory holds one page. Returns how many rows it deleted.
 */
export async function deleteTenantRows(
  table: TableClient,
  tenantId: string,
  until = Number.POSITIVE_INFINITY,
): Promise<{ deleted: number; finished: boolean }> {
  let deleted = 0;
  // Deleting while listing: the listing continues after the last key it returned, so nothing is skipped.
  for await (const page of tenantRowPages(table, tenantId, undefined, 1000, ['PartitionKey', 'RowKey'])) {
    deleted += await submitInBatches(
      table,
      page.rows.map((row): TransactionAction => [
        'delete',
        { partitionKey: row.partitionKey, rowKey: row.rowKey },
      ]),
    );
    if (page.continuationToken && performance.now() > until) return { deleted, finished: false };
  }
  return { deleted, finished: true };
}

/** Whether the tenant has any row left in the table (one request). */
export async function hasTenantRows(table: TableClient, tenantId: string): Promise<boolean> {
  const first = await tenantRowPages(table, tenantId, undefined, 1, ['PartitionKey']).next();
  return !first.done && first.value.rows.length > 0;
}

/** The canonical text of a row: columns in name order, each with its Edm type. */
export function canonicalRow(row: StoredRow): string {
  const names = Object.keys(row).sort();
  return JSON.stringify(names.map((name) => [name, row[name]]));
}

/** Count and digest of one partition, as the verification compares them. */
export interface PartitionSummary {
  partitionKey: string;
  rows: number;
  digest: string;
}

/**
 * Summaries of the tenant's partitions in key order, computed while the rows stream by (memory holds one
 * partition's hash, never the rows). `canonical` may replace a row's text (wrapped keys compare by what they
 * unwrap to, not by their wrapping).
 */
export async function* partitionSummaries(
  table: TableClient,
  tenantId: string,
  canonical: (row: StoredRow) => Promise<string> | string = canonicalRow,
): AsyncGenerator<PartitionSummary> {
  let current: { partitionKey: string; rows: number; hash: Hash } | undefined;
  for await (const page of tenantRowPages(table, tenantId)) {
    for (const row of page.rows) {
      if (current?.partitionKey !== row.partitionKey) {
        if (current) yield finish(current);
        current = { partitionKey: row.partitionKey, rows: 0, hash: createHash('sha256') };
      }
      current.rows++;
      current.hash.update(await canonical(row)).update('\n');
    }
  }
  if (current) yield finish(current);
}

const finish = (p: { partitionKey: string; rows: number; hash: Hash }): PartitionSummary => ({
  partitionKey: p.partitionKey,
  rows: p.rows,
  digest: p.hash.digest('hex'),
});

/** One side of a table's or container's comparison: how many, and one digest over all of them. */
export interface SideTotals {
  count: number;
  digest: string;
}

/** Totals folded from partition summaries (or blob digests) in key order. */
export class Totals {
  private count = 0;
  private readonly hash = createHash('sha256');

  add(key: string, count: number, digest: string): void {
    this.count += count;
    this.hash.update(`${key}\t${count}\t${digest}\n`);
  }

  result(): SideTotals {
    return { count: this.count, digest: this.hash.digest('hex') };
  }
}

/**
 * Walks two key-ordered streams of summaries side by side and yields every partition that differs (present
 * on one side only, or with another count or digest). Each summary reaches its side's callback once, in
 * order (for the totals). Memory holds one summary per side.
 */
export async function* mismatches<T extends PartitionSummary>(
  source: AsyncIterator<T>,
  target: AsyncIterator<T>,
  onSource: (summary: T) => void,
  onTarget: (summary: T) => void,
): AsyncGenerator<string> {
  let a = await source.next();
  let b = await target.next();
  while (!a.done || !b.done) {
    if (!a.done && !b.done && a.value.partitionKey === b.value.partitionKey) {
      onSource(a.value);
      onTarget(b.value);
      if (a.value.rows !== b.value.rows || a.value.digest !== b.value.digest) yield a.value.partitionKey;
      a = await source.next();
      b = await target.next();
    } else if (b.done || (!a.done && a.value.partitionKey < b.value.partitionKey)) {
      onSource(a.value!);
      yield a.value!.partitionKey;
      a = await source.next();
    } else {
      onTarget(b.value);
      yield b.value.partitionKey;
      b = await target.next();
    }
  }
}

/** The tenant's blobs of a container, a page at a time, with their sizes. */
export async function* tenantBlobPages(
  container: ContainerClient,
  tenantId: string,
  continuationToken?: string,
  pageSize = 500,
): AsyncGenerator<{ blobs: { name: string; bytes: number }[]; continuationToken?: string | undefined }> {
  const pages = container
    .listBlobsFlat({ prefix: tenantBlobPrefix(tenantId) })
    .byPage({ maxPageSize: pageSize, ...(continuationToken ? { continuationToken } : {}) });
  for await (const page of pages) {
    yield {
      blobs: page.segment.blobItems.map((blob) => ({
        name: blob.name,
        bytes: blob.properties.contentLength ?? 0,
      })),
      continuationToken: page.continuationToken || undefined,
    };
  }
}

// Entity-group transactions: actions grouped by partition, at most 100 per transaction (the service's
// limits). A batch that fails because a row is already gone (a re-run after a crash, a concurrent run) is
// redone one action at a time, skipping what is missing, so deletes and merges stay idempotent.
//
// Deletes may be guarded by the ETag of the version they mean (`deleteVersions`): the SDK's transaction
// API sends `If-Match: *` for every delete, so the `guardedDeletePolicy` below, installed on every Table
// client of the service, puts each guarded delete's ETag into its part of the `$batch` body. Azure (and
// Azurite) then refuse the whole transaction with 412 when any row changed, and the rows are retried one
// by one with the SDK's own conditional delete, so only rows that changed are left.
import { AsyncLocalStorage } from 'node:async_hooks';

import type { PipelinePolicy } from '@azure/core-rest-pipeline';
import { RestError, type TableClient, type TransactionAction } from '@azure/data-tables';

export const BATCH_LIMIT = 100;
/** Transactions of different partitions in flight at once (each partition's own stay in order). */
export const PARALLEL_PARTITIONS = 8;

export interface RowKeys {
  partitionKey: string;
  rowKey: string;
}

/** A row to delete only if it is still the version with this ETag. */
export interface RowVersion extends RowKeys {
  etag: string;
}

/** Submits the actions; returns how many took effect (rows already gone are not counted). */
export async function submitInBatches(
  table: TableClient,
  actions: readonly TransactionAction[],
): Promise<number> {
  let done = 0;
  await inPartitionBatches(
    actions,
    (action) => action[1].partitionKey ?? '',
    async (batch) => {
      try {
        await table.submitTransaction([...batch]);
        done += batch.length;
      } catch (error) {
        if (!isStatus(error, 404)) throw error;
        done += await oneByOne(table, batch);
      }
    },
  );
  return done;
}

export interface VersionDeletes {
  /** Rows deleted by this call. */
  deleted: RowKeys[];
  /** Rows that were there in another version than the one meant: left as they are. */
  changed: RowKeys[];
}

/**
 * Deletes each row only if it still has the ETag given (batched per partition, conditions inside the
 * transaction). Rows already gone count as neither deleted nor changed.
 */
export async function deleteVersions(
  table: TableClient,
  rows: readonly RowVersion[],
): Promise<VersionDeletes> {
  const result: VersionDeletes = { deleted: [], changed: [] };
  await inPartitionBatches(
    rows,
    (row) => row.partitionKey,
    async (versions) => {
      const guard: BatchGuard = { etags: new Map(versions.map((v) => [keyOf(v), v.etag])), applied: false };
      try {
        await batchGuards.run(guard, () =>
          table.submitTransaction(versions.map((v): TransactionAction => ['delete', keysOnly(v)])),
        );
        if (!guard.applied) {
          // Without the policy the deletes went out unconditional: a programming error, never a quiet success.
          throw new Error('This Table client has no guardedDeletePolicy: its deletes were not conditional.');
        }
        result.deleted.push(...versions.map(keysOnly));
        return;
      } catch (error) {
        if (!isStatus(error, 404) && !isStatus(error, 412)) throw error;
      }
      for (const version of versions) {
        const outcome = await deleteVersion(table, version);
        if (outcome === 'deleted') result.deleted.push(keysOnly(version));
        else if (outcome === 'changed') result.changed.push(keysOnly(version));
      }
    },
  );
  return result;
}

/**
 * One guarded delete. A 412 is believed only when the row really is at another version now: a refusal
 * for a row still at the version meant (a fault on the way) is tried again, so nothing due is left behind.
 */
async function deleteVersion(
  table: TableClient,
  version: RowVersion,
): Promise<'deleted' | 'changed' | 'gone'> {
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      await table.deleteEntity(version.partitionKey, version.rowKey, { etag: version.etag });
      return 'deleted';
    } catch (error) {
      if (isStatus(error, 404)) return 'gone';
      if (!isStatus(error, 412)) throw error;
    }
    const current = await table.getEntity(version.partitionKey, version.rowKey).catch((error: unknown) => {
      if (isStatus(error, 404)) return undefined;
      throw error;
    });
    if (!current) return 'gone';
    if (current.etag !== version.etag) return 'changed';
  }
  return 'changed';
}

interface BatchGuard {
  /** ETag per `partitionKey\nrowKey` of the deletes in the transaction being sent. */
  etags: Map<string, string>;
  /** Set by the policy once it has put the conditions in. */
  applied: boolean;
}

const batchGuards = new AsyncLocalStorage<BatchGuard>();

/** `DELETE <url>(PartitionKey='…',RowKey='…') HTTP/1.1` in a `$batch` body; quotes inside keys are doubled. */
const DELETE_LINE = /^DELETE \S*\(PartitionKey='((?:[^']|'')*)',RowKey='((?:[^']|'')*)'\) HTTP\/1\.1$/;

/**
 * Puts the ETags of guarded deletes into the `$batch` request that carries them, in place of the
 * `If-Match: *` the SDK writes. Installed per call on every Table client (storageAccount.ts); a no-op for
 * every other request.
 */
export const guardedDeletePolicy: PipelinePolicy = {
  name: 'guardedDeletes',
  sendRequest(request, next) {
    const guard = batchGuards.getStore();
    if (guard && typeof request.body === 'string' && request.url.includes('$batch')) {
      const lines = request.body.split('\r\n');
      let etag: string | undefined;
      for (let i = 0; i < lines.length; i++) {
        const line = lines[i]!;
        const match = DELETE_LINE.exec(line);
        if (match) {
          etag = guard.etags.get(keyOf({ partitionKey: unquote(match[1]!), rowKey: unquote(match[2]!) }));
          if (etag === undefined) throw new Error(`No ETag was given for the delete "${line}".`);
        } else if (etag !== undefined && line === 'If-Match: *') {
          lines[i] = `If-Match: ${etag}`;
          etag = undefined;
        }
      }
      request.body = lines.join('\r\n');
      guard.applied = true;
    }
    return next(request);
  },
};

const unquote = (value: string) => decodeURIComponent(value).replaceAll("''", "'");
const keyOf = (row: RowKeys) => `${row.partitionKey}\n${row.rowKey}`;
const keysOnly = (row: RowKeys) => ({ partitionKey: row.partitionKey, rowKey: row.rowKey });
const isStatus = (error: unknown, status: number) =>
  error instanceof RestError && error.statusCode === status;

/** Runs `submit` for each partition's items in slices of BATCH_LIMIT, PARALLEL_PARTITIONS at a time. */
async function inPartitionBatches<T>(
  items: readonly T[],
  partitionOf: (item: T) => string,
  submit: (batch: readonly T[]) => Promise<void>,
): Promise<void> {
  const byPartition = new Map<string, T[]>();
  for (const item of items) {
    const partitionKey = partitionOf(item);
    const group = byPartition.get(partitionKey) ?? [];
    group.push(item);
    byPartition.set(partitionKey, group);
  }
  const groups = [...byPartition.values()];
  const worker = async () => {
    for (let group = groups.shift(); group; group = groups.shift()) {
      for (let i = 0; i < group.length; i += BATCH_LIMIT) await submit(group.slice(i, i + BATCH_LIMIT));
    }
  };
  await Promise.all(Array.from({ length: Math.min(PARALLEL_PARTITIONS, groups.length) }, worker));
}

async function oneByOne(table: TableClient, batch: readonly TransactionAction[]): Promise<number> {
  let done = 0;
  for (const action of batch) {
    const entity = action[1] as RowKeys;
    try {
      if (action[0] === 'delete') await table.deleteEntity(entity.partitionKey, entity.rowKey);
      else if (action[0] === 'update') await table.updateEntity(entity, action[2] ?? 'Merge');
      else if (action[0] === 'upsert') await table.upsertEntity(entity, action[2] ?? 'Merge');
      else await table.createEntity(entity);
      done++;
    } catch (error) {
      if (!(isStatus(error, 404) || isStatus(error, 409))) throw error;
    }
  }
  return done;
}

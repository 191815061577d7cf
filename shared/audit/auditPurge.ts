// The audit log's 1-year purge: moves the checkpoint past the expired events first (ETag guarded, only
// forward), then deletes them with their id markers and the heads of blocks wholly behind it; resumable.
import { odata, RestError, type TableClient, type TransactionAction } from '@azure/data-tables';

import type { TenantScope } from '../residency/tenantDirectory';
import { isAbsent, orAbsent } from '../storage/absent';
import { TABLES } from '../storage/names';
import { type ChainHead, GENESIS } from './auditChain';
import type { AuditChainEnds } from './auditChainEnds';
import type { AuditPurgeResult } from './auditEvent';
import { auditKeys, blockOf, type CheckpointEntity, HEAD_ROW } from './auditRows';

/** An entity-group transaction holds at most 100 operations: 50 purged events, each with its id marker. */
const PURGE_EVENTS_PER_BATCH = 50;

/** Only the columns the purge needs of an event row. */
type PurgeRowEntity = {
  rowKey: string;
  id?: string;
  hash?: string;
};

/** The checkpoint with the purge's bookkeeping, as read (with its ETag) or about to be written. */
interface PurgeState extends ChainHead {
  /** Event rows and their markers up to this sequence are deleted; up to `sequence` they are due. */
  deletedThrough: number;
  /** The `~head` of every block below this one is deleted. */
  headsFrom: number;
  /** Absent while no checkpoint entity exists. */
  etag?: string;
}

/** An event row the purge deletes: where it is and the id whose marker goes with it. */
interface PurgedRow {
  sequence: number;
  id?: string;
}

export class AuditPurge {
  private readonly blockSize: number;

  constructor(private readonly ends: AuditChainEnds) {
    this.blockSize = ends.blockSize;
  }

  async purgeBefore(tenant: TenantScope, cutoff: Date): Promise<AuditPurgeResult> {
    if (Number.isNaN(cutoff.getTime())) throw new Error('The audit purge cutoff is not a valid date.');
    const before = cutoff.toISOString();
    const table = await tenant.account.table(TABLES.audit);
    const tenantId = tenant.tenantId;
    let state = await this.readPurgeState(table, tenantId);
    // The purge goes no further than the tail found now; only blocks before its block lose their head.
    const tail = await this.ends.locateTail(table, tenant, state);
    const tailBlock = tail.sequence > 0 ? blockOf(tail.sequence, this.blockSize) : -1;
    let purged = 0;
    let scanning = true;
    /** The rows from `deletedThrough` to the checkpoint, when this call just read them. */
    let due: PurgedRow[] | undefined;

    for (;;) {
      if (this.purgeIsDue(state, tailBlock)) {
        // Events (with their markers) the checkpoint has passed, then the heads of blocks wholly behind it.
        purged += await this.deletePurgedEvents(table, tenantId, state, due);
        const headsFrom = await this.deletePurgedHeads(table, tenantId, state, tailBlock);
        const done = { ...state, deletedThrough: state.sequence, headsFrom };
        state =
          (await this.writePurgeState(table, tenantId, done, state.etag)) ??
          (await this.readPurgeState(table, tenantId));
        due = undefined;
        continue;
      }
      if (!scanning) break;
      const run = await this.expiredRun(table, tenantId, state.sequence, tail.sequence, before);
      const last = run.rows.at(-1);
      if (last === undefined || run.hash === undefined) {
        // Nothing (more) expired after the checkpoint as this call knows it; but a concurrent purge may have
        // moved it and deleted those rows meanwhile: only a checkpoint that is still the same ends the purge.
        const now = await this.readPurgeState(table, tenantId);
        if (now.etag === state.etag) break;
        state = now;
        continue;
      }
      // Only a run that fills its block to the end can go on in the next one.
      scanning = run.reachedBlockEnd && last.sequence < tail.sequence;
      const moved: PurgeState = {
        sequence: last.sequence,
        hash: run.hash,
        ...(last.id !== undefined ? { lastEventId: last.id } : {}),
        deletedThrough: state.deletedThrough,
        headsFrom: state.headsFrom,
      };
      // The checkpoint moves before anything is deleted: verification starts after it from now on.
      const written = await this.writePurgeState(table, tenantId, moved, state.etag);
      if (written) {
        state = written;
        due = run.rows;
      } else {
        // Another purge moved it first: carry on from where it is now.
        state = await this.readPurgeState(table, tenantId);
        scanning = true;
      }
    }
    return {
      purged,
      ...(state.etag !== undefined
        ? {
            checkpoint: {
              sequence: state.sequence,
              hash: state.hash,
              ...(state.lastEventId !== undefined ? { lastEventId: state.lastEventId } : {}),
            },
          }
        : {}),
    };
  }

  /** Whether the checkpoint has passed rows or heads that are still to be deleted. */
  private purgeIsDue(state: PurgeState, tailBlock: number): boolean {
    return (
      state.deletedThrough < state.sequence ||
      (state.headsFrom < tailBlock && (state.headsFrom + 1) * this.blockSize <= state.sequence)
    );
  }

  /**
   * The run of expired events right after `after`, within its block and up to `upTo`: only events before the
   * cutoff are read (the time filter runs in the service), and the run ends at the first gap, so an event
   * at or after the cutoff ends it even when a later one (clock skew between writers) is older.
   */
  private async expiredRun(
    table: TableClient,
    tenantId: string,
    after: number,
    upTo: number,
    before: string,
  ): Promise<{ rows: PurgedRow[]; hash?: string; reachedBlockEnd: boolean }> {
    if (after >= upTo) return { rows: [], reachedBlockEnd: false };
    const block = blockOf(after + 1, this.blockSize);
    const end = Math.min(upTo, (block + 1) * this.blockSize);
    const query = [
      odata`PartitionKey eq ${auditKeys.blockPartition(tenantId, block)}`,
      odata`RowKey gt ${auditKeys.eventRow(after)}`,
      odata`RowKey le ${auditKeys.eventRow(end)}`,
      odata`time lt ${before}`,
    ].join(' and ');
    const rows: PurgedRow[] = [];
    let hash: string | undefined;
    read: for await (const entities of table
      .listEntities<PurgeRowEntity>({ queryOptions: { filter: query, select: ['rowKey', 'id', 'hash'] } })
      .byPage({ maxPageSize: 1000 })) {
      for (const entity of entities) {
        const sequence = Number(entity.rowKey);
        if (sequence !== after + rows.length + 1 || typeof entity.hash !== 'string') break read;
        rows.push({ sequence, ...(typeof entity.id === 'string' ? { id: entity.id } : {}) });
        hash = entity.hash;
      }
    }
    const last = rows.at(-1)?.sequence;
    return {
      rows,
      ...(hash !== undefined ? { hash } : {}),
      reachedBlockEnd: last === (block + 1) * this.blockSize,
    };
  }

  /**
   * Deletes the event rows from `deletedThrough` (exclusive) to the checkpoint, with their id markers: the
   * rows given (just read by this call) or, when resuming, the rows still found there. Returns how many
   * events this call deleted.
   */
  private async deletePurgedEvents(
    table: TableClient,
    tenantId: string,
    state: PurgeState,
    known: readonly PurgedRow[] | undefined,
  ): Promise<number> {
    let deleted = 0;
    const from = state.deletedThrough;
    const to = state.sequence;
    for (
      let block = blockOf(from + 1, this.blockSize);
      from < to && block <= blockOf(to, this.blockSize);
      block++
    ) {
      const partitionKey = auditKeys.blockPartition(tenantId, block);
      const first = Math.max(from + 1, block * this.blockSize + 1);
      const last = Math.min(to, (block + 1) * this.blockSize);
      let rows: PurgedRow[] = [];
      const flush = async (): Promise<void> => {
        if (rows.length > 0) deleted += await deleteRows(table, partitionKey, rows);
        rows = [];
      };
      if (known !== undefined) {
        for (const row of known) {
          if (row.sequence < first || row.sequence > last) continue;
          rows.push(row);
          if (rows.length === PURGE_EVENTS_PER_BATCH) await flush();
        }
      } else {
        const query = [
          odata`PartitionKey eq ${partitionKey}`,
          odata`RowKey ge ${auditKeys.eventRow(first)}`,
          odata`RowKey le ${auditKeys.eventRow(last)}`,
        ].join(' and ');
        for await (const entities of table
          .listEntities<PurgeRowEntity>({ queryOptions: { filter: query, select: ['rowKey', 'id'] } })
          .byPage({ maxPageSize: 1000 })) {
          for (const entity of entities) {
            rows.push({
              sequence: Number(entity.rowKey),
              ...(typeof entity.id === 'string' ? { id: entity.id } : {}),
            });
            if (rows.length === PURGE_EVENTS_PER_BATCH) await flush();
          }
        }
      }
      await flush();
    }
    return deleted;
  }

  /**
   * Deletes the `~head` of each block from `headsFrom` on that the checkpoint has wholly passed, except the
   * tail's block (and any after it): the chain's current head always stays. Returns the new `headsFrom`.
   */
  private async deletePurgedHeads(
    table: TableClient,
    tenantId: string,
    state: PurgeState,
    tailBlock: number,
  ): Promise<number> {
    let block = state.headsFrom;
    for (; block < tailBlock && (block + 1) * this.blockSize <= state.sequence; block++) {
      await deleteIfPresent(table, auditKeys.blockPartition(tenantId, block), HEAD_ROW);
    }
    return Math.max(block, state.headsFrom);
  }

  private async readPurgeState(table: TableClient, tenantId: string): Promise<PurgeState> {
    const key = auditKeys.checkpoint(tenantId);
    const entity = await orAbsent(table.getEntity<CheckpointEntity>(key.partitionKey, key.rowKey));
    if (!entity) return { ...GENESIS, deletedThrough: 0, headsFrom: 0 };
    return {
      sequence: entity.sequence,
      hash: entity.hash,
      ...(entity.lastEventId !== undefined ? { lastEventId: entity.lastEventId } : {}),
      deletedThrough: typeof entity.deletedThrough === 'number' ? entity.deletedThrough : 0,
      headsFrom: typeof entity.headsFrom === 'number' ? entity.headsFrom : 0,
      etag: entity.etag,
    };
  }

  /**
   * Writes the checkpoint guarded by the ETag it was read with (created when there was none), so it only
   * ever moves from the state this purge saw; undefined when another purge wrote it first.
   */
  private async writePurgeState(
    table: TableClient,
    tenantId: string,
    state: PurgeState,
    etag: string | undefined,
  ): Promise<PurgeState | undefined> {
    const entity: CheckpointEntity = {
      ...auditKeys.checkpoint(tenantId),
      sequence: state.sequence,
      hash: state.hash,
      ...(state.lastEventId !== undefined ? { lastEventId: state.lastEventId } : {}),
      deletedThrough: state.deletedThrough,
      headsFrom: state.headsFrom,
    };
    try {
      const response =
        etag === undefined
          ? await table.createEntity(entity)
          : await table.updateEntity(entity, 'Replace', { etag });
      if (!response.etag) return undefined;
      return { ...state, etag: response.etag };
    } catch (error) {
      if (error instanceof RestError && [404, 409, 412].includes(error.statusCode ?? 0)) return undefined;
      throw error;
    }
  }
}

/** One block's events and markers in one transaction; rows already gone are then deleted one by one. */
async function deleteRows(
  table: TableClient,
  partitionKey: string,
  rows: readonly PurgedRow[],
): Promise<number> {
  // A set: two rows claiming one id (only by tampering) must not make one transaction delete a row twice.
  const markers = [
    ...new Set(rows.flatMap((row) => (row.id !== undefined ? [auditKeys.idMarkerRow(row.id)] : []))),
  ];
  const events = rows.map((row) => auditKeys.eventRow(row.sequence));
  try {
    await table.submitTransaction([
      ...markers.map((rowKey): TransactionAction => ['delete', { partitionKey, rowKey }]),
      ...events.map((rowKey): TransactionAction => ['delete', { partitionKey, rowKey }]),
    ]);
    return events.length;
  } catch (error) {
    if (!isAbsent(error)) throw error;
  }
  // An earlier purge that stopped part-way, or one running beside this, deleted some of them. Markers go
  // first, so that no marker ever outlives its event (an append by that id would find a marker alone).
  await Promise.all(markers.map((rowKey) => deleteIfPresent(table, partitionKey, rowKey)));
  const deleted = await Promise.all(events.map((rowKey) => deleteIfPresent(table, partitionKey, rowKey)));
  return deleted.filter(Boolean).length;
}

/** Deletes a row; false when it was not there (any more). */
async function deleteIfPresent(table: TableClient, partitionKey: string, rowKey: string): Promise<boolean> {
  return (await orAbsent(table.deleteEntity(partitionKey, rowKey))) !== undefined;
}

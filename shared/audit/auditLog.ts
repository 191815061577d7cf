// The audit log in Table storage: an append-only, hash-chained run of events per tenant (SPEC §7).
//
// Layout (table `audit` of the tenant's geography account):
// - Events sit in blocks of `blockSize` (default 1000) sequences, so no partition grows without bound:
//   PartitionKey `${tenantId}_${block}` (block = floor((sequence - 1) / blockSize), 6 digits), RowKey the
//   sequence (12 digits), so rows read back in chain order.
// - Each block holds its chain head (RowKey `~head`: sequence, hash, lastEventId) and one marker per event id
//   (RowKey `~id_<eventId>`). An append writes event, marker and head in ONE entity-group transaction,
//   guarded by the head's ETag (or by creating the head of a new block), so two writers can never both
//   extend the same position: the chain does not fork. A loser re-reads the head and retries.
// - Exactly-once by id holds within a one-block window: an append looks for the id's marker in the block of
//   the last event and the block before it, which covers at least the last `blockSize` events.
// - The 1-year purge (`purgeBefore`) leaves a checkpoint (PartitionKey `${tenantId}_checkpoint`, RowKey
//   `~checkpoint`: sequence, hash, lastEventId of the last purged event); the chain then starts there, and
//   rows at or before it are never read again (verify and list start after it). The purge works block by
//   block from the checkpoint on, and for each run of expired events it first moves the checkpoint (ETag
//   guarded, only forward) and then deletes the events and their `~id_` markers (100 rows per transaction).
//   The checkpoint also records how far rows are deleted (`deletedThrough`) and below which block every
//   `~head` is deleted (`headsFrom`), so a purge stopped part-way is finished by the next one. A block's
//   `~head` goes once all of the block is purged and a later block exists; the tail's head always stays.
// - A purge deletes the heads of blocks behind the checkpoint only after moving the checkpoint past them. So
//   a search for the tail that relies on a head being absent re-reads the checkpoint afterwards: when the
//   checkpoint is not past what it found, no head it missed was purged (otherwise it searches again).
// `~` sorts after digits, so `RowKey lt '~'` selects the events of a block.
import { createHash, randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';

import { odata, RestError, type TableClient, type TransactionAction } from '@azure/data-tables';

import type { Clock } from '../clock';
import { DomainError } from '../errors';
import {
  issueContinuation,
  listScope,
  type Page,
  type PageRequest,
  readContinuation,
  sequencePosition,
} from '../paging';
import type { TenantScope } from '../residency/tenantDirectory';
import { TABLES } from '../storage/names';
import { type ChainHead, type ChainPosition, ChainVerifier, GENESIS, hashEvent } from './auditChain';
import type {
  Actor,
  AuditEvent,
  AuditEventInput,
  AuditFilter,
  AuditLog,
  AuditPurgeResult,
  AuditVerification,
} from './auditEvent';

export const DEFAULT_BLOCK_SIZE = 1000;
/** Six digits of block number: the partition keys of one tenant sort as numbers up to here. */
const MAX_BLOCK = 999_999;
const HEAD_ROW = '~head';
const CHECKPOINT_ROW = '~checkpoint';
const EVENT_ROWS_END = '~';
const SAFE_ID = /^[A-Za-z0-9._:@-]{1,256}$/;

/** Enough attempts that 50 writers on separate instances contending for one tenant all get through. */
const MAX_ATTEMPTS = 60;
const BACKOFF_BASE_MS = 5;
const BACKOFF_CAP_MS = 250;
/** A list call reads at most this many blocks, so a narrow filter over a long log answers in bounded time. */
const MAX_BLOCKS_PER_PAGE = 20;
/** An entity-group transaction holds at most 100 operations: 50 purged events, each with its id marker. */
const PURGE_EVENTS_PER_BATCH = 50;

export interface AuditLogOptions {
  /** Sequences per partition; tests use a small one to cross block boundaries quickly. */
  blockSize?: number;
}

/** Where the events, heads and checkpoint of a tenant's audit log are stored (for the purge and for tests). */
export const auditKeys = {
  blockPartition: (tenantId: string, block: number): string => {
    if (!Number.isSafeInteger(block) || block < 0 || block > MAX_BLOCK) {
      throw new Error(`Audit block ${block} is outside the key space.`);
    }
    return `${tenantId}_${String(block).padStart(6, '0')}`;
  },
  eventRow: (sequence: number): string => String(sequence).padStart(12, '0'),
  event: (tenantId: string, sequence: number, blockSize = DEFAULT_BLOCK_SIZE) => ({
    partitionKey: auditKeys.blockPartition(tenantId, blockOf(sequence, blockSize)),
    rowKey: auditKeys.eventRow(sequence),
  }),
  headRow: HEAD_ROW,
  /** Ids outside a conservative key alphabet are hashed so that any id makes a valid RowKey. */
  idMarkerRow: (eventId: string): string =>
    SAFE_ID.test(eventId) ? `~id_${eventId}` : `~idh_${createHash('sha256').update(eventId).digest('hex')}`,
  checkpoint: (tenantId: string) => ({ partitionKey: `${tenantId}_checkpoint`, rowKey: CHECKPOINT_ROW }),
};

const blockOf = (sequence: number, blockSize: number): number => Math.floor((sequence - 1) / blockSize);

// Entity shapes are type aliases, not interfaces, so that they fit the SDK's TableEntity index signature.
type EventEntity = {
  partitionKey: string;
  rowKey: string;
  id: string;
  sequence: number;
  time: string;
  tenantId: string;
  /** JSON of the actor; actorId and actorUpn (lower case) are copies the list filter can match on. */
  actor: string;
  actorId: string;
  actorUpn?: string;
  action: string;
  target: string;
  /** Lower-case copy of target.id, so discovery can find events about a subject server-side. */
  targetId: string;
  /** Copy of details.subjectRef (a request's pseudonymous subject), for the same reason. */
  subjectRef?: string;
  outcome: string;
  correlationId: string;
  details: string;
  previousHash: string;
  hash: string;
};

type HeadEntity = {
  partitionKey: string;
  rowKey: string;
  sequence: number;
  hash: string;
  lastEventId: string;
};

type MarkerEntity = {
  partitionKey: string;
  rowKey: string;
  sequence: number;
};

type CheckpointEntity = {
  partitionKey: string;
  rowKey: string;
  sequence: number;
  hash: string;
  lastEventId?: string;
  /** Purge bookkeeping (absent: nothing known deleted, the next purge checks from the start). */
  deletedThrough?: number;
  headsFrom?: number;
};

/** Only the columns the purge needs of an event row. */
type PurgeRowEntity = {
  rowKey: string;
  id?: string;
  hash?: string;
};

/** The end of a tenant's chain as last read: the position to extend and the head entity that vouches for it. */
interface ChainTail extends ChainHead {
  /** The `~head` entity holding this position; absent at genesis or at a checkpoint with nothing after it. */
  stored?: { block: number; etag: string };
}

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

export class TableAuditLog implements AuditLog {
  private readonly blockSize: number;
  /** Last known block per tenant chain; blocks only grow, so the search for the head starts here. */
  private readonly blockHints = new Map<string, number>();
  /** The tail this process wrote last, with its ETag: an uncontended append needs no read first. */
  private readonly knownTails = new Map<string, ChainTail>();
  /** Appends of one tenant run one after the other in this process, so its own writers never contend. */
  private readonly appendQueues = new Map<string, Promise<void>>();

  constructor(
    private readonly clock: Clock,
    options: AuditLogOptions = {},
  ) {
    this.blockSize = options.blockSize ?? DEFAULT_BLOCK_SIZE;
    if (!Number.isSafeInteger(this.blockSize) || this.blockSize < 1) {
      throw new Error('The audit block size must be a positive integer.');
    }
  }

  append(tenant: TenantScope, input: AuditEventInput): Promise<AuditEvent> {
    const chain = chainKey(tenant);
    const previous = this.appendQueues.get(chain) ?? Promise.resolve();
    const result = previous.then(() => this.appendNow(tenant, chain, input));
    const settled = result.then(
      () => undefined,
      () => undefined,
    );
    this.appendQueues.set(chain, settled);
    void settled.then(() => {
      if (this.appendQueues.get(chain) === settled) this.appendQueues.delete(chain);
    });
    return result;
  }

  async list(tenant: TenantScope, filter: AuditFilter, page: PageRequest): Promise<Page<AuditEvent>> {
    // A position is only read in the log it was issued for: another tenant's token is refused.
    const scope = listScope(TABLES.audit, tenant.tenantId);
    const requested = readContinuation(page.continuation, scope, sequencePosition)?.after ?? 0;
    const top = Math.max(1, page.top);
    const table = await tenant.account.table(TABLES.audit);
    const [start, tail] = await Promise.all([
      this.readCheckpoint(table, tenant.tenantId),
      this.locateTail(table, tenant),
    ]);
    // Purged blocks hold nothing to list: start after the checkpoint.
    let after = Math.max(requested, start.sequence);
    const items: AuditEvent[] = [];
    if (after >= tail.sequence) return { items };

    const conditions = filterConditions(filter);
    const lastBlock = blockOf(tail.sequence, this.blockSize);
    let block = blockOf(after + 1, this.blockSize);
    for (let read = 0; read < MAX_BLOCKS_PER_PAGE && block <= lastBlock && items.length < top; read++) {
      const query = [
        odata`PartitionKey eq ${auditKeys.blockPartition(tenant.tenantId, block)}`,
        odata`RowKey gt ${auditKeys.eventRow(after)}`,
        odata`RowKey lt ${EVENT_ROWS_END}`,
        ...conditions,
      ].join(' and ');
      const pages = table
        .listEntities<EventEntity>({ queryOptions: { filter: query } })
        .byPage({ maxPageSize: Math.min(1000, top - items.length) });
      for await (const entities of pages) {
        for (const entity of entities) {
          if (items.length >= top) break;
          items.push(readEventOrThrow(entity));
          after = entity.sequence;
        }
        if (items.length >= top) break;
      }
      if (items.length < top) after = Math.max(after, (block + 1) * this.blockSize);
      block += 1;
    }
    after = Math.min(after, tail.sequence);
    return after < tail.sequence ? { items, continuation: issueContinuation(scope, { after }) } : { items };
  }

  async verify(tenant: TenantScope): Promise<AuditVerification> {
    const table = await tenant.account.table(TABLES.audit);
    let start: ChainHead = await this.readCheckpoint(table, tenant.tenantId);
    let tail = await this.locateTail(table, tenant, start);
    let verifier = new ChainVerifier(start, tail);
    /** The last link the current verifier accepted, how many it accepted, and how many verifiers before it. */
    let reached: ChainPosition = start;
    let accepted = 0;
    let carried = 0;
    // One query over every block from the start on (not a walk from head to head), so that events in a block
    // whose head is gone are still read, and show up as unacknowledged. Rows at or before the checkpoint (a
    // purge that stopped part-way leaves some) are outside the query.
    const query = [
      odata`PartitionKey ge ${auditKeys.blockPartition(tenant.tenantId, blockOf(start.sequence + 1, this.blockSize))}`,
      odata`PartitionKey le ${auditKeys.blockPartition(tenant.tenantId, MAX_BLOCK)}`,
      odata`RowKey gt ${auditKeys.eventRow(start.sequence)}`,
      odata`RowKey lt ${EVENT_ROWS_END}`,
    ].join(' and ');
    read: for await (const entities of table
      .listEntities<EventEntity>({ queryOptions: { filter: query } })
      .byPage({ maxPageSize: 1000 })) {
      for (const entity of entities as Partial<EventEntity>[]) {
        // The RowKey is the position; a row at or before a checkpoint that moved while reading is purged.
        const position = Number(entity.rowKey);
        if (position <= start.sequence) continue;
        const event = readEvent(entity);
        const feed = (): boolean => {
          if (!event) return verifier.addUnreadable(String(entity.id ?? entity.rowKey));
          if (!verifier.add(event)) return false;
          reached = event;
          accepted += 1;
          return true;
        };
        if (feed()) continue;
        // Two things running beside a verification look like a broken chain without being one; anything else is.
        const checkpoint = await this.readCheckpoint(table, tenant.tenantId);
        if (checkpoint.sequence > start.sequence) {
          // A purge moved the checkpoint and deleted events from the old start on: the chain starts there now,
          // and goes on with the rows still to come.
          start = checkpoint;
          reached = checkpoint;
          accepted = 0;
          carried = 0;
          if (start.sequence > tail.sequence) tail = await this.locateTail(table, tenant, start);
          if (position <= start.sequence) {
            verifier = new ChainVerifier(reached, tail);
            continue;
          }
        } else if (position > tail.sequence) {
          // An append after the tail was located: past the head read then, but acknowledged by a later one.
          const later = await this.locateTail(table, tenant, start);
          if (later.sequence <= tail.sequence) break read;
          tail = later;
          carried += accepted;
          accepted = 0;
        } else {
          break read;
        }
        verifier = new ChainVerifier(reached, tail);
        if (!feed()) break read;
      }
    }
    const result = verifier.finish();
    return { ...result, checked: result.checked + carried };
  }

  async purgeBefore(tenant: TenantScope, cutoff: Date): Promise<AuditPurgeResult> {
    if (Number.isNaN(cutoff.getTime())) throw new Error('The audit purge cutoff is not a valid date.');
    const before = cutoff.toISOString();
    const table = await tenant.account.table(TABLES.audit);
    const tenantId = tenant.tenantId;
    let state = await this.readPurgeState(table, tenantId);
    // The purge goes no further than the tail found now; only blocks before its block lose their head.
    const tail = await this.locateTail(table, tenant, state);
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

  private async appendNow(tenant: TenantScope, chain: string, input: AuditEventInput): Promise<AuditEvent> {
    const table = await tenant.account.table(TABLES.audit);
    const id = input.id ?? randomUUID();
    // What is hashed must be exactly what reads back from storage: plain JSON, no extra fields.
    const actor: Actor = {
      type: input.actor.type,
      id: input.actor.id,
      ...(input.actor.upn !== undefined ? { upn: input.actor.upn } : {}),
    };
    const target = { type: input.target.type, id: input.target.id };
    const details = JSON.parse(JSON.stringify(input.details ?? {})) as Record<string, unknown>;

    for (let attempt = 1; ; attempt++) {
      const tail = (await this.cachedTail(table, tenant, chain)) ?? (await this.locateTail(table, tenant));
      // A random id cannot be in the log yet; only a caller's own id needs the look-up.
      if (input.id !== undefined) {
        const existing = await this.findById(table, tenant.tenantId, id, tail);
        if (existing) return existing;
      }
      const sequence = tail.sequence + 1;
      const block = blockOf(sequence, this.blockSize);
      const partitionKey = auditKeys.blockPartition(tenant.tenantId, block);
      const content: Omit<AuditEvent, 'hash'> = {
        id,
        sequence,
        time: this.clock().toISOString(),
        tenantId: tenant.tenantId,
        actor,
        action: input.action,
        target,
        outcome: input.outcome,
        correlationId: input.correlationId,
        details,
        previousHash: tail.hash,
      };
      const event: AuditEvent = { ...content, hash: hashEvent(content) };
      const head: HeadEntity = {
        partitionKey,
        rowKey: HEAD_ROW,
        sequence,
        hash: event.hash,
        lastEventId: id,
      };
      const marker: MarkerEntity = { partitionKey, rowKey: auditKeys.idMarkerRow(id), sequence };
      const headAction: TransactionAction =
        tail.stored !== undefined && tail.stored.block === block
          ? ['update', head, 'Replace', { etag: tail.stored.etag }]
          : ['create', head];
      const actions: TransactionAction[] = [
        // The head goes first: its sub-response carries the ETag the next append is guarded by.
        headAction,
        ['create', toEntity(partitionKey, event)],
        ['create', marker],
      ];
      try {
        const response = await table.submitTransaction(actions);
        this.blockHints.set(chain, block);
        const etag = response.subResponses[0]?.etag;
        if (etag) {
          this.knownTails.set(chain, {
            sequence,
            hash: event.hash,
            lastEventId: id,
            stored: { block, etag },
          });
        } else {
          this.knownTails.delete(chain);
        }
        return event;
      } catch (error) {
        if (!isWriteConflict(error)) throw error;
        // Another writer extended the chain (or wrote this id) first: read the head again and retry.
        this.knownTails.delete(chain);
        if (attempt >= MAX_ATTEMPTS) {
          throw new DomainError(
            'Conflict',
            'The audit log is busy; the event could not be recorded. Retry later.',
          );
        }
        await sleep(backoff(attempt));
      }
    }
  }

  /**
   * The tail this process wrote last, if it may still be used. Its ETag guards an append within its block;
   * an append that opens the next block is guarded only by that block's head not existing yet, which a purge
   * that passed the cached tail might have deleted. So at a block's end, the cached tail holds only while the
   * checkpoint is not past it (one read per block).
   */
  private async cachedTail(
    table: TableClient,
    tenant: TenantScope,
    chain: string,
  ): Promise<ChainTail | undefined> {
    const cached = this.knownTails.get(chain);
    if (cached === undefined || !this.isFull(cached)) return cached;
    const checkpoint = await this.readCheckpoint(table, tenant.tenantId);
    if (checkpoint.sequence <= cached.sequence) return cached;
    this.knownTails.delete(chain);
    return undefined;
  }

  /** The event already stored under this id in the block of the tail or the one before, if any. */
  private async findById(
    table: TableClient,
    tenantId: string,
    id: string,
    tail: ChainTail,
  ): Promise<AuditEvent | undefined> {
    if (tail.sequence < 1) return undefined;
    const tailBlock = blockOf(tail.sequence, this.blockSize);
    const blocks = tailBlock > 0 ? [tailBlock, tailBlock - 1] : [tailBlock];
    const markers = await Promise.all(
      blocks.map((block) =>
        readEntity<MarkerEntity>(table, auditKeys.blockPartition(tenantId, block), auditKeys.idMarkerRow(id)),
      ),
    );
    const marker = markers.find((found) => found !== undefined);
    if (!marker) return undefined;
    const key = auditKeys.event(tenantId, marker.sequence, this.blockSize);
    const stored = await readEntity<EventEntity>(table, key.partitionKey, key.rowKey);
    if (!stored) throw new Error(`Audit event ${id} has a marker but no event row.`);
    return readEventOrThrow(stored);
  }

  /**
   * The current end of the chain. Starts from the block hint (or, cold, from the checkpoint's block) and moves
   * forward: only a full block can have a successor, so it gallops over full blocks, then bisects.
   *
   * A head that is not full is the tail as of its read. Any other answer rests on a head being absent, and a
   * purge deletes heads behind the checkpoint after moving it: so the checkpoint is read again, and if it has
   * passed the answer, the search starts over from it.
   */
  private async locateTail(
    table: TableClient,
    tenant: TenantScope,
    knownStart?: ChainHead,
  ): Promise<ChainTail> {
    const chain = chainKey(tenant);
    let start = knownStart;
    for (let attempt = 1; ; attempt++) {
      const hint = this.blockHints.get(chain);
      let found = hint !== undefined ? await this.lastHeadFrom(table, tenant.tenantId, hint) : undefined;
      if (!found) {
        start ??= await this.readCheckpoint(table, tenant.tenantId);
        found =
          (await this.lastHeadFrom(table, tenant.tenantId, blockOf(start.sequence + 1, this.blockSize))) ??
          start;
      }
      const checkpoint =
        found.stored !== undefined && !this.isFull(found)
          ? undefined
          : await this.readCheckpoint(table, tenant.tenantId);
      if (checkpoint === undefined || checkpoint.sequence <= found.sequence) {
        if (found.stored !== undefined) this.blockHints.set(chain, found.stored.block);
        return found;
      }
      this.blockHints.delete(chain);
      start = checkpoint;
      if (attempt >= MAX_ATTEMPTS) {
        throw new DomainError('Conflict', 'The audit log is busy (a purge is running). Retry later.');
      }
    }
  }

  private async lastHeadFrom(
    table: TableClient,
    tenantId: string,
    first: number,
  ): Promise<ChainTail | undefined> {
    let last = await this.readHead(table, tenantId, first);
    if (!last) return undefined;
    let step = 1;
    let missing: number | undefined;
    while (this.isFull(last)) {
      const probe = await this.readHead(table, tenantId, blockOfTail(last) + step);
      if (!probe) {
        missing = blockOfTail(last) + step;
        break;
      }
      last = probe;
      step *= 2;
    }
    // Between a full block that exists and one that does not: bisect.
    while (missing !== undefined && missing - blockOfTail(last) > 1) {
      const middle = Math.floor((blockOfTail(last) + missing) / 2);
      const probe = await this.readHead(table, tenantId, middle);
      if (probe) last = probe;
      else missing = middle;
    }
    return last;
  }

  private isFull(tail: ChainTail): boolean {
    return tail.sequence >= (blockOfTail(tail) + 1) * this.blockSize && blockOfTail(tail) < MAX_BLOCK;
  }

  private async readHead(
    table: TableClient,
    tenantId: string,
    block: number,
  ): Promise<ChainTail | undefined> {
    if (block > MAX_BLOCK) return undefined;
    const entity = await readEntity<HeadEntity>(table, auditKeys.blockPartition(tenantId, block), HEAD_ROW);
    if (!entity?.etag) return undefined;
    return {
      sequence: entity.sequence,
      hash: entity.hash,
      lastEventId: entity.lastEventId,
      stored: { block, etag: entity.etag },
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
        if (rows.length > 0) deleted += await this.deleteRows(table, partitionKey, rows);
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

  /** One block's events and markers in one transaction; rows already gone are then deleted one by one. */
  private async deleteRows(
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
      if (!isNotFound(error)) throw error;
    }
    // An earlier purge that stopped part-way, or one running beside this, deleted some of them. Markers go
    // first, so that no marker ever outlives its event (an append by that id would find a marker alone).
    await Promise.all(markers.map((rowKey) => deleteIfPresent(table, partitionKey, rowKey)));
    const deleted = await Promise.all(events.map((rowKey) => deleteIfPresent(table, partitionKey, rowKey)));
    return deleted.filter(Boolean).length;
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
    const entity = await readEntity<CheckpointEntity>(table, key.partitionKey, key.rowKey);
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

  private async readCheckpoint(table: TableClient, tenantId: string): Promise<ChainHead> {
    const key = auditKeys.checkpoint(tenantId);
    const entity = await readEntity<CheckpointEntity>(table, key.partitionKey, key.rowKey);
    if (!entity) return GENESIS;
    return {
      sequence: entity.sequence,
      hash: entity.hash,
      ...(entity.lastEventId !== undefined ? { lastEventId: entity.lastEventId } : {}),
    };
  }
}

/** Chains are per tenant and per account: a tenant that moved geography starts over in its new account. */
const chainKey = (tenant: TenantScope): string => `${tenant.account.label}/${tenant.tenantId}`;

const blockOfTail = (tail: ChainTail): number => tail.stored?.block ?? 0;

/** Full jitter: a random wait up to an exponentially growing cap, so contenders spread out. */
const backoff = (attempt: number): number =>
  Math.random() * Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** Math.min(attempt, 16));

function isWriteConflict(error: unknown): boolean {
  // 412: the head changed since it was read; 409: the head, event or marker row was written by someone else;
  // 404: the head is gone, purged with its block (the tail was a stale one, behind a purge).
  return (
    error instanceof RestError &&
    (error.statusCode === 412 || error.statusCode === 409 || error.statusCode === 404)
  );
}

const isNotFound = (error: unknown): boolean => error instanceof RestError && error.statusCode === 404;

/** Deletes a row; false when it was not there (any more). */
async function deleteIfPresent(table: TableClient, partitionKey: string, rowKey: string): Promise<boolean> {
  try {
    await table.deleteEntity(partitionKey, rowKey);
    return true;
  } catch (error) {
    if (isNotFound(error)) return false;
    throw error;
  }
}

async function readEntity<T extends object>(
  table: TableClient,
  partitionKey: string,
  rowKey: string,
): Promise<(T & { etag: string }) | undefined> {
  try {
    return await table.getEntity<T>(partitionKey, rowKey);
  } catch (error) {
    if (error instanceof RestError && error.statusCode === 404) return undefined;
    throw error;
  }
}

/** Server-side filters: action, actor (id or UPN, case-insensitive) and the time range on the ISO string. */
function filterConditions(filter: AuditFilter): string[] {
  const conditions: string[] = [];
  if (filter.action !== undefined) conditions.push(odata`action eq ${filter.action}`);
  if (filter.actor !== undefined) {
    const actor = filter.actor.toLowerCase();
    conditions.push(odata`(actorId eq ${actor} or actorUpn eq ${actor})`);
  }
  const involving = (filter.involving ?? [])
    .map((value) => value.toLowerCase())
    .map((v) => odata`actorId eq ${v} or actorUpn eq ${v} or targetId eq ${v}`);
  const refs = (filter.subjectRefs ?? []).map((ref) => odata`subjectRef eq ${ref}`);
  if (involving.length + refs.length > 0) conditions.push(`(${[...involving, ...refs].join(' or ')})`);
  if (filter.from !== undefined) conditions.push(odata`time ge ${filter.from.toISOString()}`);
  if (filter.to !== undefined) conditions.push(odata`time le ${filter.to.toISOString()}`);
  return conditions;
}

function toEntity(partitionKey: string, event: AuditEvent): EventEntity {
  return {
    partitionKey,
    rowKey: auditKeys.eventRow(event.sequence),
    id: event.id,
    sequence: event.sequence,
    time: event.time,
    tenantId: event.tenantId,
    actor: JSON.stringify(event.actor),
    actorId: event.actor.id.toLowerCase(),
    ...(event.actor.upn !== undefined ? { actorUpn: event.actor.upn.toLowerCase() } : {}),
    action: event.action,
    target: JSON.stringify(event.target),
    targetId: event.target.id.toLowerCase(),
    ...(typeof event.details.subjectRef === 'string' ? { subjectRef: event.details.subjectRef } : {}),
    outcome: event.outcome,
    correlationId: event.correlationId,
    details: JSON.stringify(event.details),
    previousHash: event.previousHash,
    hash: event.hash,
  };
}

/** The event a row holds, or undefined when the row is not a readable event (which verification reports). */
function readEvent(entity: Partial<EventEntity>): AuditEvent | undefined {
  const actor = parseJson(entity.actor);
  const target = parseJson(entity.target);
  const details = parseJson(entity.details);
  const strings = [
    entity.id,
    entity.time,
    entity.tenantId,
    entity.action,
    entity.outcome,
    entity.correlationId,
    entity.previousHash,
    entity.hash,
  ];
  if (
    !strings.every((value) => typeof value === 'string') ||
    typeof entity.sequence !== 'number' ||
    !isObject(actor) ||
    !isObject(target) ||
    !isObject(details)
  ) {
    return undefined;
  }
  return {
    id: entity.id as string,
    sequence: entity.sequence,
    time: entity.time as string,
    tenantId: entity.tenantId as string,
    actor: actor as unknown as Actor,
    action: entity.action as string,
    target: target as unknown as AuditEvent['target'],
    outcome: entity.outcome as AuditEvent['outcome'],
    correlationId: entity.correlationId as string,
    details,
    previousHash: entity.previousHash as string,
    hash: entity.hash as string,
  };
}

function readEventOrThrow(entity: EventEntity): AuditEvent {
  const event = readEvent(entity);
  if (!event)
    throw new Error(`The audit row ${entity.partitionKey}/${entity.rowKey} is not a readable event.`);
  return event;
}

function parseJson(text: string | undefined): unknown {
  if (typeof text !== 'string') return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

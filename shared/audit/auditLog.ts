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
// - The future 1-year purge leaves a checkpoint (PartitionKey `${tenantId}_checkpoint`, RowKey `~checkpoint`:
//   sequence, hash, lastEventId of the last purged event); the chain then starts there. The purge must keep
//   the `~head` of any block that still holds unpurged events.
// `~` sorts after digits, so `RowKey lt '~'` selects the events of a block.
import { createHash, randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';

import { odata, RestError, type TableClient, type TransactionAction } from '@azure/data-tables';

import type { Clock } from '../clock';
import { DomainError } from '../errors';
import { decodeContinuation, encodeContinuation, type Page, type PageRequest } from '../paging';
import type { TenantScope } from '../residency/tenantDirectory';
import { TABLES } from '../storage/names';
import { type ChainHead, ChainVerifier, GENESIS, hashEvent } from './auditChain';
import type {
  Actor,
  AuditEvent,
  AuditEventInput,
  AuditFilter,
  AuditLog,
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
};

/** The end of a tenant's chain as last read: the position to extend and the head entity that vouches for it. */
interface ChainTail extends ChainHead {
  /** The `~head` entity holding this position; absent at genesis or at a checkpoint with nothing after it. */
  stored?: { block: number; etag: string };
}

interface ListPosition {
  /** Sequence after which the next page starts. */
  after: number;
}

const isListPosition = (value: unknown): value is ListPosition =>
  typeof value === 'object' &&
  value !== null &&
  Number.isSafeInteger((value as ListPosition).after) &&
  (value as ListPosition).after >= 0;

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
    const requested = decodeContinuation(page.continuation, isListPosition)?.after ?? 0;
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
    return after < tail.sequence ? { items, continuation: encodeContinuation({ after }) } : { items };
  }

  async verify(tenant: TenantScope): Promise<AuditVerification> {
    const table = await tenant.account.table(TABLES.audit);
    const start = await this.readCheckpoint(table, tenant.tenantId);
    const tail = await this.locateTail(table, tenant, start);
    const verifier = new ChainVerifier(start, tail);
    // One query over every block from the start on (not a walk from head to head), so that events in a block
    // whose head is gone are still read, and show up as unacknowledged.
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
        const event = readEvent(entity);
        const intact = event
          ? verifier.add(event)
          : verifier.addUnreadable(String(entity.id ?? entity.rowKey));
        if (!intact) break read;
      }
    }
    return verifier.finish();
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
      const tail = this.knownTails.get(chain) ?? (await this.locateTail(table, tenant));
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
   */
  private async locateTail(
    table: TableClient,
    tenant: TenantScope,
    knownStart?: ChainHead,
  ): Promise<ChainTail> {
    const chain = chainKey(tenant);
    const hint = this.blockHints.get(chain);
    let head = hint !== undefined ? await this.lastHeadFrom(table, tenant.tenantId, hint) : undefined;
    if (!head) {
      const start = knownStart ?? (await this.readCheckpoint(table, tenant.tenantId));
      head = await this.lastHeadFrom(table, tenant.tenantId, blockOf(start.sequence + 1, this.blockSize));
      if (!head) return start;
    }
    this.blockHints.set(chain, head.stored?.block ?? 0);
    return head;
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
  // 412: the head changed since it was read; 409: the head, event or marker row was written by someone else.
  return error instanceof RestError && (error.statusCode === 412 || error.statusCode === 409);
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
  if (filter.involving !== undefined && filter.involving.length > 0) {
    const either = filter.involving
      .map((value) => value.toLowerCase())
      .map((v) => odata`actorId eq ${v} or actorUpn eq ${v} or targetId eq ${v}`);
    conditions.push(`(${either.join(' or ')})`);
  }
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

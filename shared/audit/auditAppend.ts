// Appending to the audit chain: event, id marker and block head in one entity-group transaction guarded by
// the head's ETag, retried on conflict, so concurrent writers never fork the chain; an id appends once.
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';

import { RestError, type TableClient, type TransactionAction } from '@azure/data-tables';

import type { Clock } from '../clock';
import { DomainError } from '../errors';
import type { TenantScope } from '../residency/tenantDirectory';
import { orAbsent } from '../storage/absent';
import { TABLES } from '../storage/names';
import { hashEvent } from './auditChain';
import { type AuditChainEnds, chainKey, type ChainTail, MAX_ATTEMPTS } from './auditChainEnds';
import type { Actor, AuditEvent, AuditEventInput } from './auditEvent';
import {
  auditKeys,
  blockOf,
  type EventEntity,
  HEAD_ROW,
  type HeadEntity,
  type MarkerEntity,
  readEventOrThrow,
  toEntity,
} from './auditRows';

const BACKOFF_BASE_MS = 5;
const BACKOFF_CAP_MS = 250;

export class AuditAppender {
  /** The tail this process wrote last, with its ETag: an uncontended append needs no read first. */
  private readonly knownTails = new Map<string, ChainTail>();
  /** Appends of one tenant run one after the other in this process, so its own writers never contend. */
  private readonly appendQueues = new Map<string, Promise<void>>();

  constructor(
    private readonly clock: Clock,
    private readonly ends: AuditChainEnds,
  ) {}

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
      const tail =
        (await this.cachedTail(table, tenant, chain)) ?? (await this.ends.locateTail(table, tenant));
      // A random id cannot be in the log yet; only a caller's own id needs the look-up.
      if (input.id !== undefined) {
        const existing = await this.findById(table, tenant.tenantId, id, tail);
        if (existing) return existing;
      }
      const sequence = tail.sequence + 1;
      const block = blockOf(sequence, this.ends.blockSize);
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
        this.ends.noteBlock(chain, block);
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
    if (cached === undefined || !this.ends.isFull(cached)) return cached;
    const checkpoint = await this.ends.readCheckpoint(table, tenant.tenantId);
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
    const tailBlock = blockOf(tail.sequence, this.ends.blockSize);
    const blocks = tailBlock > 0 ? [tailBlock, tailBlock - 1] : [tailBlock];
    const markers = await Promise.all(
      blocks.map((block) =>
        orAbsent(
          table.getEntity<MarkerEntity>(auditKeys.blockPartition(tenantId, block), auditKeys.idMarkerRow(id)),
        ),
      ),
    );
    const marker = markers.find((found) => found !== undefined);
    if (!marker) return undefined;
    const key = auditKeys.event(tenantId, marker.sequence, this.ends.blockSize);
    const stored = await orAbsent(table.getEntity<EventEntity>(key.partitionKey, key.rowKey));
    if (!stored) throw new Error(`Audit event ${id} has a marker but no event row.`);
    return readEventOrThrow(stored);
  }
}

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

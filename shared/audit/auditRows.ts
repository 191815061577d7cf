// The rows of the audit table: where events, block heads, id markers and the purge checkpoint are stored
// (see auditLog.ts for the layout), and how an event becomes a row and a row an event.
import { createHash } from 'node:crypto';

import type { Actor, AuditEvent } from './auditEvent';

export const DEFAULT_BLOCK_SIZE = 1000;
/** Six digits of block number: the partition keys of one tenant sort as numbers up to here. */
export const MAX_BLOCK = 999_999;
export const HEAD_ROW = '~head';
const CHECKPOINT_ROW = '~checkpoint';
/** `~` sorts after digits, so `RowKey lt '~'` selects the events of a block. */
export const EVENT_ROWS_END = '~';
const SAFE_ID = /^[A-Za-z0-9._:@-]{1,256}$/;

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

export const blockOf = (sequence: number, blockSize: number): number =>
  Math.floor((sequence - 1) / blockSize);

// Entity shapes are type aliases, not interfaces, so that they fit the SDK's TableEntity index signature.
export type EventEntity = {
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

export type HeadEntity = {
  partitionKey: string;
  rowKey: string;
  sequence: number;
  hash: string;
  lastEventId: string;
};

export type MarkerEntity = {
  partitionKey: string;
  rowKey: string;
  sequence: number;
};

export type CheckpointEntity = {
  partitionKey: string;
  rowKey: string;
  sequence: number;
  hash: string;
  lastEventId?: string;
  /** Purge bookkeeping (absent: nothing known deleted, the next purge checks from the start). */
  deletedThrough?: number;
  headsFrom?: number;
};

export function toEntity(partitionKey: string, event: AuditEvent): EventEntity {
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
export function readEvent(entity: Partial<EventEntity>): AuditEvent | undefined {
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

export function readEventOrThrow(entity: EventEntity): AuditEvent {
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

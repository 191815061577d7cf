// The hash chain of a tenant's audit events (SPEC §7): how an event is hashed, and how a stored run of events
// is checked against where it starts (genesis or a purge checkpoint) and against the head the log keeps.
import { createHash } from 'node:crypto';

import canonicalize from 'canonicalize';

import type { AuditEvent, AuditVerification } from './auditEvent';

export const GENESIS_HASH = '0'.repeat(64);

/** A place in the chain: an event's sequence and hash (0 and GENESIS_HASH before the first event). */
export interface ChainPosition {
  sequence: number;
  hash: string;
}

export const GENESIS: ChainPosition = { sequence: 0, hash: GENESIS_HASH };

/** The last event as the log records it beside the events, so that a deleted tail is noticed. */
export interface ChainHead extends ChainPosition {
  /** Absent when the head is the start itself (an empty log). */
  lastEventId?: string;
}

/** SHA-256 (hex) over the RFC 8785 canonical JSON of every field of the event except its own hash. */
export function hashEvent(event: Omit<AuditEvent, 'hash'>): string {
  // Fields are picked one by one so that whatever else an object carries (a hash, storage columns) is ignored.
  const content = {
    id: event.id,
    sequence: event.sequence,
    previousHash: event.previousHash,
    tenantId: event.tenantId,
    time: event.time,
    actor: event.actor,
    action: event.action,
    target: event.target,
    outcome: event.outcome,
    correlationId: event.correlationId,
    details: event.details,
  };
  const canonical = canonicalize(content);
  if (canonical === undefined) throw new Error(`Audit event ${event.id} cannot be canonicalized.`);
  return createHash('sha256').update(canonical, 'utf8').digest('hex');
}

/**
 * Checks events one at a time, in storage order, so a long log never has to be held in memory. An event is
 * broken when its stored hash is not the hash of its content, or when it is not the next link after the
 * previous one (its sequence is not the next position, or its previousHash is not the previous hash): this is
 * how an edited, a deleted (the event after the gap is reported) or a moved event shows.
 */
export class ChainVerifier {
  private expectedSequence: number;
  private previousHash: string;
  private lastEventId: string | undefined;
  private checked = 0;
  private brokenEventId: string | undefined;

  constructor(
    start: ChainPosition = GENESIS,
    private readonly head?: ChainHead,
  ) {
    this.expectedSequence = start.sequence + 1;
    this.previousHash = start.hash;
  }

  /** Feeds the next stored event; false once the chain is broken (the rest need not be read). */
  add(event: AuditEvent): boolean {
    if (this.brokenEventId !== undefined) return false;
    this.checked += 1;
    const fits =
      event.sequence === this.expectedSequence &&
      event.previousHash === this.previousHash &&
      hashEvent(event) === event.hash &&
      // An event past the head was never acknowledged by the log.
      (this.head === undefined || event.sequence <= this.head.sequence);
    if (!fits) return this.breakAt(event.id);
    this.expectedSequence += 1;
    this.previousHash = event.hash;
    this.lastEventId = event.id;
    return true;
  }

  /** A stored row that is not even readable as an event. */
  addUnreadable(eventId: string): boolean {
    if (this.brokenEventId !== undefined) return false;
    this.checked += 1;
    return this.breakAt(eventId);
  }

  finish(): AuditVerification {
    if (this.brokenEventId === undefined && this.head !== undefined) {
      const lastSequence = this.expectedSequence - 1;
      if (lastSequence < this.head.sequence) {
        // The events stop before the head: the tail was deleted.
        this.brokenEventId = this.head.lastEventId ?? '';
      } else if (this.head.hash !== this.previousHash && this.lastEventId !== undefined) {
        // The last event was rewritten together with its hash; only the head still knows the original.
        this.brokenEventId = this.lastEventId;
      }
    }
    return {
      valid: this.brokenEventId === undefined,
      checked: this.checked,
      ...(this.brokenEventId !== undefined ? { firstBrokenEventId: this.brokenEventId } : {}),
    };
  }

  private breakAt(eventId: string): false {
    this.brokenEventId = eventId;
    return false;
  }
}

/** Verifies events given in storage (row) order, from a start position, optionally against the log's head. */
export function verifyChain(
  events: Iterable<AuditEvent>,
  start: ChainPosition = GENESIS,
  head?: ChainHead,
): AuditVerification {
  const verifier = new ChainVerifier(start, head);
  for (const event of events) {
    if (!verifier.add(event)) break;
  }
  return verifier.finish();
}

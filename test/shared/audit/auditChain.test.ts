import type { AuditEvent } from '../../../shared/audit/auditEvent';
import { GENESIS_HASH, hashEvent, verifyChain } from '../../../shared/audit/auditChain';

const TENANT = '6f1c2b0e-5a0d-4a51-9b1e-0c7f6c1f3a10';

/** A valid chain of `count` events starting after `start`. */
function chain(count: number, start = { sequence: 0, hash: GENESIS_HASH }): AuditEvent[] {
  const events: AuditEvent[] = [];
  let previousHash = start.hash;
  for (let i = 1; i <= count; i++) {
    const sequence = start.sequence + i;
    const content: Omit<AuditEvent, 'hash'> = {
      id: `event-${sequence}`,
      sequence,
      time: new Date(Date.UTC(2025, 0, 1, 0, 0, sequence)).toISOString(),
      tenantId: TENANT,
      actor: { type: 'user', id: 'user-1', upn: 'ada@contoso.com' },
      action: 'dsr.created',
      target: { type: 'dataSubjectRequest', id: `request-${sequence}` },
      outcome: 'success',
      correlationId: `correlation-${sequence}`,
      details: { step: sequence, nested: { b: 2, a: [1, 'x'] } },
      previousHash,
    };
    const event = { ...content, hash: hashEvent(content) };
    events.push(event);
    previousHash = event.hash;
  }
  return events;
}

const at = (events: AuditEvent[], index: number): AuditEvent => {
  const event = events[index];
  if (!event) throw new Error(`no event at ${index}`);
  return event;
};

describe('hashEvent', () => {
  const [event] = chain(1) as [AuditEvent];

  it('is a SHA-256 hex digest that does not depend on key order or on the stored hash', () => {
    const reversed = Object.fromEntries(Object.entries(event).reverse()) as unknown as AuditEvent;
    const reordered: AuditEvent = { ...reversed, details: { nested: { a: [1, 'x'], b: 2 }, step: 1 } };
    const withOtherHash: AuditEvent = { ...event, hash: 'other' };
    expect(hashEvent(event)).toMatch(/^[0-9a-f]{64}$/);
    expect(Object.keys(reordered)).not.toEqual(Object.keys(event));
    expect(hashEvent(reordered)).toBe(hashEvent(event));
    expect(hashEvent(withOtherHash)).toBe(event.hash);
  });

  it.each([
    ['id', { id: 'event-x' }],
    ['sequence', { sequence: 2 }],
    ['previousHash', { previousHash: 'f'.repeat(64) }],
    ['tenantId', { tenantId: 'another-tenant' }],
    ['time', { time: '2025-01-01T00:00:02.000Z' }],
    ['actor', { actor: { type: 'user', id: 'user-1', upn: 'eve@contoso.com' } }],
    ['action', { action: 'dsr.approved' }],
    ['target', { target: { type: 'dataSubjectRequest', id: 'request-2' } }],
    ['outcome', { outcome: 'failure' }],
    ['correlationId', { correlationId: 'correlation-x' }],
    ['details', { details: { step: 1, nested: { b: 3, a: [1, 'x'] } } }],
  ] as const)('changes when %s changes', (_field, change) => {
    expect(hashEvent({ ...event, ...change } as AuditEvent)).not.toBe(event.hash);
  });
});

describe('verifyChain', () => {
  it('accepts an intact chain and counts its events', () => {
    const events = chain(5);
    const last = at(events, 4);
    expect(verifyChain(events, undefined, { sequence: 5, hash: last.hash, lastEventId: last.id })).toEqual({
      valid: true,
      checked: 5,
    });
    expect(verifyChain([])).toEqual({ valid: true, checked: 0 });
  });

  it('reports a modified event', () => {
    const events = chain(5);
    events[2] = { ...at(events, 2), details: { step: 'rewritten' } };
    expect(verifyChain(events)).toEqual({ valid: false, checked: 3, firstBrokenEventId: 'event-3' });
  });

  it('reports the event after a rewritten one whose hash was recomputed', () => {
    const events = chain(5);
    const rewritten = { ...at(events, 2), action: 'dsr.declined' };
    events[2] = { ...rewritten, hash: hashEvent(rewritten) };
    expect(verifyChain(events)).toMatchObject({ valid: false, firstBrokenEventId: 'event-4' });
  });

  it('reports the first event after a deleted one', () => {
    const events = chain(5);
    events.splice(2, 1);
    expect(verifyChain(events)).toEqual({ valid: false, checked: 3, firstBrokenEventId: 'event-4' });
  });

  it('reports the last event the head knows of when the tail was deleted', () => {
    const events = chain(5);
    const last = at(events, 4);
    const head = { sequence: 5, hash: last.hash, lastEventId: last.id };
    expect(verifyChain(events.slice(0, 3), undefined, head)).toEqual({
      valid: false,
      checked: 3,
      firstBrokenEventId: 'event-5',
    });
  });

  it('reports a last event rewritten with a fresh hash, which only the head can tell', () => {
    const events = chain(3);
    const original = at(events, 2);
    const rewritten = { ...original, outcome: 'denied' as const };
    events[2] = { ...rewritten, hash: hashEvent(rewritten) };
    const head = { sequence: 3, hash: original.hash, lastEventId: original.id };
    expect(verifyChain(events, undefined, head)).toMatchObject({
      valid: false,
      firstBrokenEventId: 'event-3',
    });
  });

  it('reports an event beyond the head', () => {
    const events = chain(4);
    const head = { sequence: 3, hash: at(events, 2).hash, lastEventId: 'event-3' };
    expect(verifyChain(events, undefined, head)).toMatchObject({
      valid: false,
      firstBrokenEventId: 'event-4',
    });
  });

  it('reports swapped events at the first position that holds the wrong one', () => {
    const events = chain(5);
    const third = at(events, 2);
    events[2] = at(events, 3);
    events[3] = third;
    expect(verifyChain(events)).toEqual({ valid: false, checked: 3, firstBrokenEventId: 'event-4' });
  });

  it('starts after a checkpoint', () => {
    const events = chain(6);
    const checkpoint = { sequence: 2, hash: at(events, 1).hash };
    const rest = events.slice(2);
    expect(verifyChain(rest, checkpoint)).toEqual({ valid: true, checked: 4 });
    // The first remaining event must link to the checkpoint, not to genesis.
    expect(verifyChain(rest)).toMatchObject({ valid: false, firstBrokenEventId: 'event-3' });
    expect(verifyChain(rest, { sequence: 2, hash: 'e'.repeat(64) })).toMatchObject({
      valid: false,
      firstBrokenEventId: 'event-3',
    });
  });
});

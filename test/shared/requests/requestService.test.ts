// Integration: request intake and decisions on the real Azurite, with the real audit log and queue.
import { TableAuditLog } from '../../../shared/audit/auditLog';
import type { Clock } from '../../../shared/clock';
import { decodeMessage } from '../../../shared/storage/queueMessages';
import { QUEUES } from '../../../shared/storage/names';
import { WorkQueue } from '../../../shared/storage/workQueue';
import { IdempotencyStore } from '../../../shared/requests/idempotencyStore';
import { RequestRepository } from '../../../shared/requests/requestRepository';
import { DataSubjectRequestService } from '../../../shared/requests/requestService';
import type { CreateRequestInput } from '../../../shared/requests/dataSubjectRequest';
import { testStorage, testTenantScope } from '../../support/testStorage';

const storage = testStorage();
const admin = { type: 'user' as const, id: 'admin-oid', upn: 'admin@contoso.com' };
const change = { actor: admin, correlationId: 'corr-1' };
const exportInput: CreateRequestInput = {
  type: 'export',
  regulation: 'GDPR',
  subject: { upn: 'adele@contoso.com' },
  dataSubjectType: 'currentEmployee',
};

let now = new Date('2026-01-31T08:00:00Z');
const clock: Clock = () => now;
const audit = new TableAuditLog(clock);
const repository = new RequestRepository();
const service = new DataSubjectRequestService(
  repository,
  new IdempotencyStore(clock),
  audit,
  new WorkQueue(storage.global),
  clock,
  // Requests here are about requests, not records: each subject is known by its object id or first alias.
  async (_tenant, subject) => ({
    subjectKey: subject.objectId ?? subject.upn ?? subject.email ?? 'unknown',
    holder: subject.objectId ? 'object' : 'alias',
  }),
);

async function workMessagesFor(requestId: string): Promise<unknown[]> {
  const queue = await storage.global.queue(QUEUES.dsrWork);
  const found: unknown[] = [];
  // Peek does not hide messages from anyone; the queue is shared by every test, so filter by request id.
  const peeked = await queue.peekMessages({ numberOfMessages: 32 });
  for (const message of peeked.peekedMessageItems) {
    const body = decodeMessage(message.messageText) as { requestId?: string };
    if (body.requestId === requestId) found.push(body);
  }
  return found;
}

beforeEach(() => {
  now = new Date('2026-01-31T08:00:00Z');
});

describe('DataSubjectRequestService on Azurite', () => {
  it('takes in a request: received, GDPR deadline, history, audit event and a discovery message', async () => {
    const tenant = testTenantScope(storage);
    const created = await service.create(tenant, exportInput, change);
    expect(created).toMatchObject({
      tenantId: tenant.tenantId,
      status: 'received',
      receivedAt: '2026-01-31T08:00:00.000Z',
      dueAt: '2026-02-28T08:00:00.000Z',
      daysLeft: 28,
      history: [{ action: 'create', to: 'received', actor: admin }],
    });
    const events = await audit.list(tenant, {}, { top: 10 });
    expect(events.items.map((e) => [e.action, e.target.id])).toEqual([['dsr.created', created.id]]);
    const stored = await repository.get(tenant, created.id);
    expect(stored.outbox).toEqual([]);
  });

  it('returns the original request for a repeated Idempotency-Key, even under concurrency', async () => {
    const tenant = testTenantScope(storage);
    const results = await Promise.all(
      Array.from({ length: 8 }, () => service.create(tenant, exportInput, change, 'key-1')),
    );
    expect(new Set(results.map((r) => r.id)).size).toBe(1);
    const listed = await service.list(tenant, {}, { top: 50 });
    expect(listed.items).toHaveLength(1);
    const events = await audit.list(tenant, { action: 'dsr.created' }, { top: 50 });
    expect(events.items).toHaveLength(1);
  });

  it('refuses a reused Idempotency-Key with another body, and forgets keys after 24 hours', async () => {
    const tenant = testTenantScope(storage);
    const first = await service.create(tenant, exportInput, change, 'key-2');
    await expect(
      service.create(tenant, { ...exportInput, type: 'access' }, change, 'key-2'),
    ).rejects.toMatchObject({
      code: 'Conflict',
    });
    now = new Date(now.getTime() + 24 * 60 * 60 * 1000 + 1);
    const second = await service.create(tenant, exportInput, change, 'key-2');
    expect(second.id).not.toBe(first.id);
  });

  it('finishes a create that stopped after storing the request: audit event and work message come on the next read', async () => {
    const tenant = testTenantScope(storage);
    const created = await service.create(tenant, exportInput, change);
    // Simulate a crash between the write and its effects: put effects back on the stored request.
    const stored = await repository.get(tenant, created.id);
    const pendingEventId = '11111111-2222-5333-a444-555555555555';
    await repository.replace(tenant, {
      ...stored,
      outbox: [
        {
          kind: 'audit',
          event: {
            id: pendingEventId,
            action: 'dsr.created',
            actor: admin,
            target: { type: 'dataSubjectRequest', id: created.id },
            outcome: 'success',
            correlationId: 'c',
          },
        },
        {
          kind: 'enqueue',
          queue: QUEUES.dsrWork,
          message: { tenantId: tenant.tenantId, requestId: created.id, step: 'resumed' },
        },
      ],
    });
    await service.get(tenant, created.id);
    expect((await repository.get(tenant, created.id)).outbox).toEqual([]);
    const events = await audit.list(tenant, {}, { top: 10 });
    expect(events.items.map((e) => e.id)).toContain(pendingEventId);
    expect(await workMessagesFor(created.id)).toContainEqual({
      tenantId: tenant.tenantId,
      requestId: created.id,
      step: 'resumed',
    });
  });

  it('decides: decline from review keeps the reason; illegal transitions are InvalidState and change nothing', async () => {
    const tenant = testTenantScope(storage);
    const created = await service.create(tenant, exportInput, change);
    await expect(service.decide(tenant, created.id, 'approve', change)).rejects.toMatchObject({
      code: 'InvalidState',
    });
    await service.change(tenant, created.id, 'startDiscovery', change);
    await service.change(tenant, created.id, 'completeDiscovery', change);
    const declined = await service.decide(tenant, created.id, 'decline', {
      ...change,
      reason: 'not an employee',
    });
    expect(declined).toMatchObject({ status: 'declined', decision: { reason: 'not an employee' } });
    expect(declined.history.map((h) => h.to)).toEqual([
      'received',
      'discovering',
      'awaitingReview',
      'declined',
    ]);
    await expect(service.decide(tenant, created.id, 'cancel', change)).rejects.toMatchObject({
      code: 'InvalidState',
    });
    expect((await service.get(tenant, created.id)).status).toBe('declined');
    const actions = (await audit.list(tenant, {}, { top: 10 })).items.map((e) => e.action);
    expect(actions).toEqual([
      'dsr.created',
      'dsr.discoveryStarted',
      'dsr.discoveryCompleted',
      'dsr.declined',
    ]);
  });

  it('approval moves to inProgress and queues fulfilment', async () => {
    const tenant = testTenantScope(storage);
    const created = await service.create(tenant, exportInput, change);
    await service.change(tenant, created.id, 'startDiscovery', change);
    await service.change(tenant, created.id, 'completeDiscovery', change);
    const approved = await service.decide(tenant, created.id, 'approve', change);
    expect(approved.status).toBe('inProgress');
    expect(await workMessagesFor(created.id)).toContainEqual({
      tenantId: tenant.tenantId,
      requestId: created.id,
      step: 'fulfil',
    });
  });

  it('extends once and moves the deadline', async () => {
    const tenant = testTenantScope(storage);
    const created = await service.create(tenant, { ...exportInput, regulation: 'CCPA' }, change);
    const extended = await service.decide(tenant, created.id, 'extend', { ...change, reason: 'volume' });
    expect(extended.dueAt).toBe('2026-05-01T08:00:00.000Z');
    await expect(
      service.decide(tenant, created.id, 'extend', { ...change, reason: 'again' }),
    ).rejects.toMatchObject({
      code: 'InvalidState',
    });
  });

  it('lists newest first with filters and paging', async () => {
    const tenant = testTenantScope(storage);
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      now = new Date(Date.UTC(2026, 0, 10 + i));
      ids.push(
        (await service.create(tenant, { ...exportInput, type: i % 2 ? 'access' : 'export' }, change)).id,
      );
    }
    const first = await service.list(tenant, {}, { top: 2 });
    expect(first.items.map((r) => r.id)).toEqual([ids[4], ids[3]]);
    expect(first.continuation).toBeDefined();
    const second = await service.list(tenant, {}, { top: 2, continuation: first.continuation! });
    expect(second.items.map((r) => r.id)).toEqual([ids[2], ids[1]]);
    const exports = await service.list(tenant, { type: 'export' }, { top: 50 });
    expect(exports.items.map((r) => r.id)).toEqual([ids[4], ids[2], ids[0]]);
    const declined = await service.list(tenant, { status: 'declined' }, { top: 50 });
    expect(declined.items).toEqual([]);
  });

  it("cannot read or change another tenant's request", async () => {
    const tenantA = testTenantScope(storage);
    const tenantB = testTenantScope(storage);
    const created = await service.create(tenantA, exportInput, change);
    await expect(service.get(tenantB, created.id)).rejects.toMatchObject({ code: 'NotFound' });
    await expect(service.decide(tenantB, created.id, 'cancel', change)).rejects.toMatchObject({
      code: 'NotFound',
    });
    expect((await service.get(tenantA, created.id)).status).toBe('received');
  });
});

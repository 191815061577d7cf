import { randomUUID } from 'node:crypto';

import { odata, type TableClient } from '@azure/data-tables';

import { hashEvent } from '../../../shared/audit/auditChain';
import type { AuditEvent, AuditEventInput, AuditFilter } from '../../../shared/audit/auditEvent';
import { TableAuditLog } from '../../../shared/audit/auditLog';
import { auditKeys } from '../../../shared/audit/auditRows';
import type { Clock } from '../../../shared/clock';
import { encodeContinuation, InvalidContinuationError } from '../../../shared/paging';
import type { TenantScope } from '../../../shared/residency/tenantDirectory';
import { TABLES } from '../../../shared/storage/names';
import { testStorage, testTenantScope } from '../../support/testStorage';

/** Small blocks, so that a few events already span several partitions. */
const BLOCK_SIZE = 5;

/** Each reading is one second after the previous one, so event times are distinct and ordered. */
function steppingClock(start = Date.UTC(2025, 0, 1)): Clock {
  let now = start;
  return () => new Date((now += 1000));
}

const input = (n: number, overrides: Partial<AuditEventInput> = {}): AuditEventInput => ({
  action: 'dsr.created',
  actor: { type: 'user', id: 'User-Oid-1', upn: 'Ada@Contoso.com' },
  target: { type: 'dataSubjectRequest', id: `request-${n}` },
  outcome: 'success',
  correlationId: `correlation-${n}`,
  details: { n, when: new Date(Date.UTC(2024, 5, 1)) },
  ...overrides,
});

async function appendMany(log: TableAuditLog, tenant: TenantScope, count: number): Promise<AuditEvent[]> {
  const events: AuditEvent[] = [];
  for (let n = 1; n <= count; n++) events.push(await log.append(tenant, input(n)));
  return events;
}

/** Follows continuations to the end; returns the pages' items. */
async function listPages(
  log: TableAuditLog,
  tenant: TenantScope,
  filter: AuditFilter,
  top: number,
): Promise<AuditEvent[][]> {
  const pages: AuditEvent[][] = [];
  let continuation: string | undefined;
  do {
    const page = await log.list(tenant, filter, { top, ...(continuation ? { continuation } : {}) });
    pages.push(page.items);
    continuation = page.continuation;
  } while (continuation && pages.length < 100);
  return pages;
}

const at = <T>(items: readonly T[], index: number): T => {
  const item = items[index];
  if (item === undefined) throw new Error(`nothing at ${index}`);
  return item;
};

/** A fresh tenant with `count` events and the raw table, for tampering. */
async function tenantWithEvents(count: number) {
  const tenant = testTenantScope();
  const log = new TableAuditLog(steppingClock(), { blockSize: BLOCK_SIZE });
  const events = await appendMany(log, tenant, count);
  const table = await tenant.account.table(TABLES.audit);
  const keyOf = (sequence: number) => auditKeys.event(tenant.tenantId, sequence, BLOCK_SIZE);
  return { tenant, log, events, table, keyOf };
}

async function deletePartition(table: TableClient, partitionKey: string): Promise<void> {
  for await (const entity of table.listEntities({
    queryOptions: { filter: odata`PartitionKey eq ${partitionKey}` },
  })) {
    await table.deleteEntity(entity.partitionKey as string, entity.rowKey as string);
  }
}

describe('TableAuditLog', () => {
  it('chains appended events by hash and lists them oldest first across blocks', async () => {
    const { tenant, log, events } = await tenantWithEvents(12);

    expect(events.map((e) => e.sequence)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
    expect(at(events, 0).previousHash).toBe('0'.repeat(64));
    events.forEach((event, i) => {
      expect(event.hash).toBe(hashEvent(event));
      if (i > 0) expect(event.previousHash).toBe(at(events, i - 1).hash);
    });
    expect(at(events, 0)).toMatchObject({
      tenantId: tenant.tenantId,
      actor: { type: 'user', id: 'User-Oid-1', upn: 'Ada@Contoso.com' },
      // Details are stored as JSON: a Date reads back as its ISO string, and the hash covers that form.
      details: { n: 1, when: '2024-06-01T00:00:00.000Z' },
    });

    const page = await log.list(tenant, {}, { top: 50 });
    expect(page.continuation).toBeUndefined();
    expect(page.items).toEqual(events);
    expect(await log.verify(tenant)).toEqual({ valid: true, checked: 12 });
  });

  it('pages with an opaque continuation across block boundaries, without repeating or skipping', async () => {
    const { tenant, log, events } = await tenantWithEvents(12);

    const pages = await listPages(log, tenant, {}, 3);
    expect(pages.map((p) => p.map((e) => e.sequence))).toEqual([
      [1, 2, 3],
      [4, 5, 6],
      [7, 8, 9],
      [10, 11, 12],
    ]);
    // A continuation is a position, not a cursor: replaying it gives the same page.
    const first = await log.list(tenant, {}, { top: 4 });
    const again = await log.list(
      tenant,
      {},
      { top: 4, ...(first.continuation ? { continuation: first.continuation } : {}) },
    );
    const replay = await log.list(
      tenant,
      {},
      { top: 4, ...(first.continuation ? { continuation: first.continuation } : {}) },
    );
    expect(again.items.map((e) => e.sequence)).toEqual([5, 6, 7, 8]);
    expect(replay.items).toEqual(again.items);
    expect(pages.flat()).toEqual(events);
  });

  it('filters by action, by actor id or UPN in any case, and by time range', async () => {
    const tenant = testTenantScope();
    const clock = steppingClock(Date.UTC(2025, 0, 1));
    const log = new TableAuditLog(clock, { blockSize: BLOCK_SIZE });
    const ada = { type: 'user' as const, id: 'Ada-Oid', upn: 'ada@contoso.com' };
    const job = { type: 'system' as const, id: 'retention-purge' };
    const appended: AuditEvent[] = [];
    for (let n = 1; n <= 14; n++) {
      appended.push(
        await log.append(
          tenant,
          input(n, { action: n % 2 === 0 ? 'dsr.approved' : 'dsr.created', actor: n % 3 === 0 ? job : ada }),
        ),
      );
    }
    const sequences = async (filter: AuditFilter) =>
      (await listPages(log, tenant, filter, 2)).flat().map((e) => e.sequence);

    expect(await sequences({ action: 'dsr.approved' })).toEqual([2, 4, 6, 8, 10, 12, 14]);
    expect(await sequences({ actor: 'RETENTION-PURGE' })).toEqual([3, 6, 9, 12]);
    expect(await sequences({ actor: 'ADA@contoso.com' })).toEqual([1, 2, 4, 5, 7, 8, 10, 11, 13, 14]);
    expect(await sequences({ actor: 'ada-oid', action: 'dsr.created' })).toEqual([1, 5, 7, 11, 13]);
    const from = new Date(at(appended, 3).time);
    const to = new Date(at(appended, 8).time);
    expect(await sequences({ from, to })).toEqual([4, 5, 6, 7, 8, 9]);
    expect(await sequences({ from, to, action: 'dsr.approved' })).toEqual([4, 6, 8]);
    expect(await sequences({ action: 'retention.purged' })).toEqual([]);
  });

  it('returns the stored event when an id is appended again, from any instance, within the block window', async () => {
    const tenant = testTenantScope();
    const log = new TableAuditLog(steppingClock(), { blockSize: BLOCK_SIZE });
    await appendMany(log, tenant, 3);
    const original = await log.append(tenant, input(4, { id: 'dsr.created:request-4' }));
    const oddId = await log.append(tenant, input(5, { id: 'tenant/event #5?' }));
    // The next event opens a new block: the marker of the first append is now in the previous block.
    await log.append(tenant, input(6));

    const otherInstance = new TableAuditLog(steppingClock(Date.UTC(2030, 0, 1)), { blockSize: BLOCK_SIZE });
    const scopeOnOtherClients = testTenantScope(testStorage(), 'EU', tenant.tenantId);
    expect(await log.append(tenant, input(99, { id: 'dsr.created:request-4' }))).toEqual(original);
    expect(
      await otherInstance.append(scopeOnOtherClients, input(99, { id: 'dsr.created:request-4' })),
    ).toEqual(original);
    expect(await otherInstance.append(scopeOnOtherClients, input(99, { id: 'tenant/event #5?' }))).toEqual(
      oddId,
    );

    const all = await log.list(tenant, {}, { top: 50 });
    expect(all.items.map((e) => e.sequence)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(await log.verify(tenant)).toEqual({ valid: true, checked: 6 });
  });

  it("serializes one instance's concurrent appends: one transaction per event, no conflicts", async () => {
    const requests: string[] = [];
    const storage = testStorage({
      tablePolicies: [
        {
          position: 'perCall',
          policy: {
            name: 'recordRequests',
            sendRequest: (request, next) => (
              requests.push(`${request.method} ${request.url}`),
              next(request)
            ),
          },
        },
      ],
    });
    const tenant = testTenantScope(storage);
    const log = new TableAuditLog(steppingClock(), { blockSize: BLOCK_SIZE });

    const events = await Promise.all(Array.from({ length: 20 }, (_, i) => log.append(tenant, input(i + 1))));

    expect(events.map((e) => e.sequence)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    // Cold start reads the checkpoint, the first head (absent) and the checkpoint again (no purge passed the
    // empty start); after that the ETag of each write guards the next, and opening each of the 3 later blocks
    // costs one checkpoint read (a purge past the cached tail would have deleted the guarding head).
    expect(requests.filter((r) => r.includes('$batch'))).toHaveLength(20);
    expect(requests.filter((r) => r.startsWith('GET'))).toHaveLength(3 + 3);
    expect(await log.verify(tenant)).toEqual({ valid: true, checked: 20 });
  });

  it('reads a bounded number of blocks per page, so a narrow filter may give an empty page and a continuation', async () => {
    const tenant = testTenantScope();
    const log = new TableAuditLog(steppingClock(), { blockSize: 1 });
    for (let n = 1; n <= 25; n++) {
      await log.append(tenant, input(n, { action: n === 25 ? 'retention.purged' : 'dsr.created' }));
    }

    const first = await log.list(tenant, { action: 'retention.purged' }, { top: 10 });
    expect(first.items).toEqual([]);
    expect(first.continuation).toEqual(expect.any(String));
    const second = await log.list(
      tenant,
      { action: 'retention.purged' },
      { top: 10, continuation: first.continuation! },
    );
    expect(second.items.map((e) => e.sequence)).toEqual([25]);
    expect(second.continuation).toBeUndefined();
  });

  it('records concurrent appends of one id once', async () => {
    const tenant = testTenantScope();
    const writers = Array.from({ length: 8 }, () => ({
      log: new TableAuditLog(steppingClock(), { blockSize: BLOCK_SIZE }),
      scope: testTenantScope(testStorage(), 'EU', tenant.tenantId),
    }));
    const results = await Promise.all(
      writers.map((w) => w.log.append(w.scope, input(1, { id: 'same-event' }))),
    );
    expect(new Set(results.map((e) => e.hash)).size).toBe(1);
    expect((await at(writers, 0).log.list(tenant, {}, { top: 50 })).items).toHaveLength(1);
  });

  it.each([BLOCK_SIZE, 1000])(
    'serializes 50 concurrent writers on separate instances into one chain (block size %i)',
    async (blockSize) => {
      const tenantId = randomUUID();
      const writers = Array.from({ length: 50 }, (_, i) => ({
        log: new TableAuditLog(steppingClock(Date.UTC(2025, 0, 1) + i), { blockSize }),
        scope: testTenantScope(testStorage(), 'EU', tenantId),
      }));

      const results = await Promise.all(writers.map((w, i) => w.log.append(w.scope, input(i + 1))));

      expect(results.map((e) => e.sequence).sort((a, b) => a - b)).toEqual(
        Array.from({ length: 50 }, (_, i) => i + 1),
      );
      const reader = at(writers, 0);
      const listed = (await listPages(reader.log, reader.scope, {}, 200)).flat();
      expect(listed).toHaveLength(50);
      expect(new Set(listed.map((e) => e.correlationId)).size).toBe(50);
      expect(await reader.log.verify(reader.scope)).toEqual({ valid: true, checked: 50 });
    },
  );

  describe('verification detects tampering through the raw table', () => {
    it('reports an event whose content was modified', async () => {
      const { tenant, log, events, table, keyOf } = await tenantWithEvents(12);
      await table.updateEntity({ ...keyOf(7), details: JSON.stringify({ n: 700 }) }, 'Merge');
      expect(await log.verify(tenant)).toEqual({
        valid: false,
        checked: 7,
        firstBrokenEventId: at(events, 6).id,
      });
    });

    it('reports the first event after a deleted one, within a block and across a block boundary', async () => {
      const { tenant, log, events, table, keyOf } = await tenantWithEvents(12);
      const sixth = keyOf(6);
      await table.deleteEntity(sixth.partitionKey, sixth.rowKey);
      expect(await log.verify(tenant)).toEqual({
        valid: false,
        checked: 6,
        firstBrokenEventId: at(events, 6).id,
      });

      const third = keyOf(3);
      await table.deleteEntity(third.partitionKey, third.rowKey);
      expect(await log.verify(tenant)).toEqual({
        valid: false,
        checked: 3,
        firstBrokenEventId: at(events, 3).id,
      });
    });

    it('reports swapped events at the first row that holds the wrong one', async () => {
      const { tenant, log, events, table, keyOf } = await tenantWithEvents(12);
      const [third, fourth] = [keyOf(3), keyOf(4)];
      const rowThree = await table.getEntity(third.partitionKey, third.rowKey);
      const rowFour = await table.getEntity(fourth.partitionKey, fourth.rowKey);
      await table.updateEntity({ ...rowFour, ...third, etag: undefined }, 'Replace');
      await table.updateEntity({ ...rowThree, ...fourth, etag: undefined }, 'Replace');
      expect(await log.verify(tenant)).toEqual({
        valid: false,
        checked: 3,
        firstBrokenEventId: at(events, 3).id,
      });
    });

    it('reports the last event when it was deleted', async () => {
      const { tenant, log, events, table, keyOf } = await tenantWithEvents(12);
      const last = keyOf(12);
      await table.deleteEntity(last.partitionKey, last.rowKey);
      expect(await log.verify(tenant)).toEqual({
        valid: false,
        checked: 11,
        firstBrokenEventId: at(events, 11).id,
      });
    });

    it('reports the first event of a block whose head was deleted', async () => {
      const { tenant, events, table } = await tenantWithEvents(12);
      await table.deleteEntity(auditKeys.blockPartition(tenant.tenantId, 2), auditKeys.headRow);
      // A cold instance has no hint and must find the chain's end from storage alone.
      const cold = new TableAuditLog(steppingClock(), { blockSize: BLOCK_SIZE });
      expect(await cold.verify(tenant)).toEqual({
        valid: false,
        checked: 11,
        firstBrokenEventId: at(events, 10).id,
      });
    });

    it('reports an unreadable row', async () => {
      const { tenant, log, events, table, keyOf } = await tenantWithEvents(4);
      await table.updateEntity({ ...keyOf(2), actor: '{not json' }, 'Merge');
      expect(await log.verify(tenant)).toEqual({
        valid: false,
        checked: 2,
        firstBrokenEventId: at(events, 1).id,
      });
    });
  });

  it('verifies from the purge checkpoint and keeps extending the chain after it', async () => {
    const { tenant, log, events, table, keyOf } = await tenantWithEvents(12);
    // What the purge will do: record the last purged event, then delete up to it (block 0 entirely).
    const seventh = at(events, 6);
    await table.createEntity({
      ...auditKeys.checkpoint(tenant.tenantId),
      sequence: 7,
      hash: seventh.hash,
      lastEventId: seventh.id,
    });
    await deletePartition(table, auditKeys.blockPartition(tenant.tenantId, 0));
    for (const sequence of [6, 7]) {
      const key = keyOf(sequence);
      await table.deleteEntity(key.partitionKey, key.rowKey);
    }

    expect(await log.verify(tenant)).toEqual({ valid: true, checked: 5 });
    expect((await log.list(tenant, {}, { top: 50 })).items.map((e) => e.sequence)).toEqual([
      8, 9, 10, 11, 12,
    ]);

    const cold = new TableAuditLog(steppingClock(), { blockSize: BLOCK_SIZE });
    const next = await cold.append(tenant, input(13));
    expect(next).toMatchObject({ sequence: 13, previousHash: at(events, 11).hash });
    expect(await cold.verify(tenant)).toEqual({ valid: true, checked: 6 });
  });

  it('continues from a checkpoint when every event was purged', async () => {
    const { tenant, events, table } = await tenantWithEvents(10);
    const tenth = at(events, 9);
    await table.createEntity({ ...auditKeys.checkpoint(tenant.tenantId), sequence: 10, hash: tenth.hash });
    await deletePartition(table, auditKeys.blockPartition(tenant.tenantId, 0));
    await deletePartition(table, auditKeys.blockPartition(tenant.tenantId, 1));

    const cold = new TableAuditLog(steppingClock(), { blockSize: BLOCK_SIZE });
    expect(await cold.verify(tenant)).toEqual({ valid: true, checked: 0 });
    expect(await cold.append(tenant, input(11))).toMatchObject({ sequence: 11, previousHash: tenth.hash });
    expect(await cold.verify(tenant)).toEqual({ valid: true, checked: 1 });
  });

  it("keeps a tenant's events invisible to another tenant", async () => {
    const { tenant, log } = await tenantWithEvents(6);
    const other = testTenantScope(testStorage(), tenant.geography);

    expect(await log.list(other, {}, { top: 50 })).toEqual({ items: [] });
    expect(await log.verify(other)).toEqual({ valid: true, checked: 0 });
    expect(await log.append(other, input(1))).toMatchObject({ sequence: 1, tenantId: other.tenantId });
    expect((await log.list(tenant, {}, { top: 50 })).items.every((e) => e.tenantId === tenant.tenantId)).toBe(
      true,
    );
    expect(await log.verify(tenant)).toEqual({ valid: true, checked: 6 });
  });

  it.each([
    ['not base64 JSON', 'not-a-token'],
    ['a negative position', encodeContinuation({ after: -1 })],
    ['a fractional position', encodeContinuation({ after: 1.5 })],
    ['another shape', encodeContinuation(null)],
  ])('rejects a continuation that is %s', async (_case, continuation) => {
    const { tenant, log } = await tenantWithEvents(1);
    await expect(log.list(tenant, {}, { top: 10, continuation })).rejects.toBeInstanceOf(
      InvalidContinuationError,
    );
  });
});

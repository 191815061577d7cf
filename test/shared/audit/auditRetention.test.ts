// Integration (Azurite): the 1-year purge of the audit log (SPEC §6, §7) keeps the chain verifiable.
import type { PipelinePolicy, PipelineRequest } from '@azure/core-rest-pipeline';
import { odata, type TableClient } from '@azure/data-tables';

import type { AuditEvent, AuditEventInput } from '../../../shared/audit/auditEvent';
import { TableAuditLog } from '../../../shared/audit/auditLog';
import { auditKeys } from '../../../shared/audit/auditRows';
import type { Clock } from '../../../shared/clock';
import type { TenantScope } from '../../../shared/residency/tenantDirectory';
import { TABLES } from '../../../shared/storage/names';
import { functionRegistry } from '../../../functions/registry';
import { testStorage, testTenantScope } from '../../support/testStorage';

/** Small blocks, so that a few events already span several partitions. */
const BLOCK_SIZE = 5;
const OLD = Date.UTC(2024, 0, 1);
const CUTOFF = new Date(Date.UTC(2025, 0, 1));
const RECENT = Date.UTC(2025, 6, 1);

/** Each reading is one second after the previous one; `jump` moves it (events with old or recent times). */
function settableClock(start = OLD): { clock: Clock; jump: (to: number) => void } {
  let now = start;
  return {
    clock: () => new Date((now += 1000)),
    jump: (to) => {
      now = to;
    },
  };
}

const input = (n: number): AuditEventInput => ({
  action: 'dsr.created',
  actor: { type: 'user', id: 'user-oid-1', upn: 'ada@contoso.com' },
  target: { type: 'dataSubjectRequest', id: `request-${n}` },
  outcome: 'success',
  correlationId: `correlation-${n}`,
  details: { n },
});

const at = <T>(items: readonly T[], index: number): T => {
  const item = items[index];
  if (item === undefined) throw new Error(`nothing at ${index}`);
  return item;
};

/** A Table pipeline policy that records requests and the rows each query returned, and can fail requests. */
function recorder() {
  const requests: string[] = [];
  let rowsRead = 0;
  let failWhen: ((request: PipelineRequest) => boolean) | undefined;
  let before: ((request: PipelineRequest) => Promise<void>) | undefined;
  const policy: PipelinePolicy = {
    name: 'recordAndFail',
    sendRequest: async (request, next) => {
      await before?.(request);
      if (failWhen?.(request)) throw new Error('killed');
      requests.push(`${request.method} ${decodeURIComponent(request.url)}`);
      const response = await next(request);
      if (request.method === 'GET' && decodeURIComponent(request.url).includes('$filter=')) {
        rowsRead += (JSON.parse(response.bodyAsText ?? '{}') as { value?: unknown[] }).value?.length ?? 0;
      }
      return response;
    },
  };
  return {
    storage: testStorage({ tablePolicies: [{ policy, position: 'perCall' }] }),
    requests,
    rowsRead: () => rowsRead,
    reset: () => {
      requests.length = 0;
      rowsRead = 0;
    },
    /** From now on, requests that match fail (a purge killed at that point). */
    failFrom: (matches: (request: PipelineRequest) => boolean) => {
      failWhen = matches;
    },
    /** Runs before each request is sent. */
    beforeEach: (run: (request: PipelineRequest) => Promise<void>) => {
      before = run;
    },
  };
}

/** A fresh tenant with `old` events from 2024, then `recent` ones from mid-2025 (after CUTOFF). */
async function logWith(old: number, recent: number, storage = testStorage()) {
  const tenant = testTenantScope(storage);
  const { clock, jump } = settableClock();
  const log = new TableAuditLog(clock, { blockSize: BLOCK_SIZE });
  const events: AuditEvent[] = [];
  for (let n = 1; n <= old + recent; n++) {
    if (n === old + 1) jump(RECENT);
    events.push(await log.append(tenant, input(n)));
  }
  const table = await tenant.account.table(TABLES.audit);
  return { tenant, log, events, table, jump };
}

/** Another instance on other clients (a cold process): no hint, no cached tail. */
const coldInstance = (tenant: TenantScope, clock: Clock = settableClock(RECENT).clock) => ({
  log: new TableAuditLog(clock, { blockSize: BLOCK_SIZE }),
  scope: testTenantScope(testStorage(), tenant.geography, tenant.tenantId),
});

/** Every row of the tenant's blocks, as `block/rowKey`. */
async function blockRows(table: TableClient, tenantId: string): Promise<string[]> {
  const rows: string[] = [];
  for await (const entity of table.listEntities({
    queryOptions: {
      filter: odata`PartitionKey ge ${auditKeys.blockPartition(tenantId, 0)} and PartitionKey le ${auditKeys.blockPartition(tenantId, 999_999)}`,
    },
  })) {
    rows.push(
      `${Number((entity.partitionKey as string).slice(tenantId.length + 1))}/${entity.rowKey as string}`,
    );
  }
  return rows;
}

/** The rows a block holds for these events: head, each event and each id marker. */
const expectedRows = (events: readonly AuditEvent[], block: number): string[] => [
  ...events.map((e) => `${block}/${auditKeys.eventRow(e.sequence)}`),
  `${block}/${auditKeys.headRow}`,
  ...events.map((e) => `${block}/${auditKeys.idMarkerRow(e.id)}`),
];

const sequences = async (log: TableAuditLog, tenant: TenantScope): Promise<number[]> =>
  (await log.list(tenant, {}, { top: 1000 })).items.map((e) => e.sequence);

const range = (from: number, to: number): number[] =>
  Array.from({ length: to - from + 1 }, (_, i) => from + i);

const isBatch = (request: PipelineRequest) => request.url.includes('$batch');

describe('TableAuditLog.purgeBefore', () => {
  it('deletes the events before the cutoff across blocks, with their markers and the heads of purged blocks', async () => {
    const { tenant, log, events, table } = await logWith(12, 8);

    const result = await log.purgeBefore(tenant, CUTOFF);

    const twelfth = at(events, 11);
    expect(result).toEqual({
      purged: 12,
      checkpoint: { sequence: 12, hash: twelfth.hash, lastEventId: twelfth.id },
    });
    expect(await sequences(log, tenant)).toEqual(range(13, 20));
    expect(await log.verify(tenant)).toEqual({ valid: true, checked: 8 });
    const cold = coldInstance(tenant);
    expect(await cold.log.verify(cold.scope)).toEqual({ valid: true, checked: 8 });
    expect(await sequences(cold.log, cold.scope)).toEqual(range(13, 20));
    // Blocks 0 and 1 are gone, head included; block 2 keeps its head and its unpurged events and markers.
    expect((await blockRows(table, tenant.tenantId)).sort()).toEqual(
      [...expectedRows(events.slice(12, 15), 2), ...expectedRows(events.slice(15, 20), 3)].sort(),
    );
  });

  it('is a no-op when run again, and never moves the checkpoint back for an earlier cutoff', async () => {
    const rec = recorder();
    const { tenant, log, events } = await logWith(7, 3, rec.storage);
    const first = await log.purgeBefore(tenant, CUTOFF);
    expect(first.purged).toBe(7);

    rec.reset();
    expect(await log.purgeBefore(tenant, CUTOFF)).toEqual({ purged: 0, checkpoint: first.checkpoint });
    expect(await log.purgeBefore(tenant, new Date(OLD))).toEqual({ purged: 0, checkpoint: first.checkpoint });
    // Reads only: nothing deleted, the checkpoint not rewritten.
    expect(rec.requests.filter((r) => !r.startsWith('GET'))).toEqual([]);
    expect(await log.verify(tenant)).toEqual({ valid: true, checked: 3 });
    expect(first.checkpoint).toEqual({
      sequence: 7,
      hash: at(events, 6).hash,
      lastEventId: at(events, 6).id,
    });
  });

  it('does nothing, and writes no checkpoint, when nothing has expired or the log is empty', async () => {
    const { tenant, log, table } = await logWith(0, 6);
    expect(await log.purgeBefore(tenant, CUTOFF)).toEqual({ purged: 0 });
    const checkpoint = auditKeys.checkpoint(tenant.tenantId);
    await expect(table.getEntity(checkpoint.partitionKey, checkpoint.rowKey)).rejects.toMatchObject({
      statusCode: 404,
    });
    expect(await log.verify(tenant)).toEqual({ valid: true, checked: 6 });

    const empty = testTenantScope();
    expect(await log.purgeBefore(empty, CUTOFF)).toEqual({ purged: 0 });
    expect(await log.verify(empty)).toEqual({ valid: true, checked: 0 });
    await expect(log.purgeBefore(tenant, new Date('not a date'))).rejects.toThrow('cutoff');
  });

  it('stays verifiable when killed after moving the checkpoint, and the next run finishes the purge', async () => {
    const rec = recorder();
    const { tenant, log, events, table } = await logWith(12, 8, rec.storage);

    // Killed at the first delete: the checkpoint has moved past block 0, whose rows are all still there.
    rec.failFrom(isBatch);
    await expect(log.purgeBefore(tenant, CUTOFF)).rejects.toThrow('killed');
    rec.failFrom(() => false);
    expect(await blockRows(table, tenant.tenantId)).toEqual(
      expect.arrayContaining(expectedRows(events.slice(0, 5), 0)),
    );
    // Rows at or before the checkpoint are outside verification and listing.
    expect(await log.verify(tenant)).toEqual({ valid: true, checked: 15 });
    expect(await sequences(log, tenant)).toEqual(range(6, 20));

    const cold = coldInstance(tenant);
    expect(await cold.log.purgeBefore(cold.scope, CUTOFF)).toMatchObject({ purged: 12 });
    expect(await log.verify(tenant)).toEqual({ valid: true, checked: 8 });
    expect((await blockRows(table, tenant.tenantId)).sort()).toEqual(
      [...expectedRows(events.slice(12, 15), 2), ...expectedRows(events.slice(15, 20), 3)].sort(),
    );
  });

  it('finishes a purge killed part-way through its deletes, whatever rows it already removed', async () => {
    const rec = recorder();
    const { tenant, log, events, table } = await logWith(12, 8, rec.storage);

    // Block 0 is deleted (one transaction); killed at the transaction of block 1, after its checkpoint.
    let batches = 0;
    rec.failFrom((request) => isBatch(request) && ++batches > 1);
    await expect(log.purgeBefore(tenant, CUTOFF)).rejects.toThrow('killed');
    rec.failFrom(() => false);
    expect(await log.verify(tenant)).toEqual({ valid: true, checked: 10 });
    // As if a one-by-one delete had stopped midway: event 7 is gone with its marker, and the marker of 8.
    const key = (sequence: number) => auditKeys.event(tenant.tenantId, sequence, BLOCK_SIZE);
    await table.deleteEntity(key(7).partitionKey, auditKeys.idMarkerRow(at(events, 6).id));
    await table.deleteEntity(key(7).partitionKey, key(7).rowKey);
    await table.deleteEntity(key(8).partitionKey, auditKeys.idMarkerRow(at(events, 7).id));
    expect(await log.verify(tenant)).toEqual({ valid: true, checked: 10 });

    // 404s on rows already gone are harmless; only what this run deleted is counted (12 - 5 - 1).
    expect(await log.purgeBefore(tenant, CUTOFF)).toMatchObject({ purged: 6, checkpoint: { sequence: 12 } });
    expect(await log.verify(tenant)).toEqual({ valid: true, checked: 8 });
    expect(await sequences(log, tenant)).toEqual(range(13, 20));
    expect((await blockRows(table, tenant.tenantId)).sort()).toEqual(
      [...expectedRows(events.slice(12, 15), 2), ...expectedRows(events.slice(15, 20), 3)].sort(),
    );
    expect(await log.purgeBefore(tenant, CUTOFF)).toMatchObject({ purged: 0 });
  });

  it('lets concurrent purges with one cutoff share the work without harm', async () => {
    const { tenant, log, events } = await logWith(23, 4);
    const purgers = [{ log, scope: tenant }, coldInstance(tenant), coldInstance(tenant)];

    const results = await Promise.all(purgers.map((p) => p.log.purgeBefore(p.scope, CUTOFF)));

    expect(results.reduce((sum, r) => sum + r.purged, 0)).toBe(23);
    for (const result of results) {
      expect(result.checkpoint).toEqual({
        sequence: 23,
        hash: at(events, 22).hash,
        lastEventId: at(events, 22).id,
      });
    }
    expect(await sequences(log, tenant)).toEqual(range(24, 27));
    expect(await log.verify(tenant)).toEqual({ valid: true, checked: 4 });
  });

  it('keeps appends going when the tail block is partly purged', async () => {
    const { tenant, log, events, table } = await logWith(12, 1);
    expect((await log.purgeBefore(tenant, CUTOFF)).purged).toBe(12);
    // Block 2 (events 11 to 15) is the tail: its head stays though 11 and 12 are gone.
    expect(await blockRows(table, tenant.tenantId)).toContain(`2/${auditKeys.headRow}`);

    const appended = [await log.append(tenant, input(14)), await log.append(tenant, input(15))];
    expect(at(appended, 0)).toMatchObject({ sequence: 14, previousHash: at(events, 12).hash });
    const cold = coldInstance(tenant);
    appended.push(await cold.log.append(cold.scope, input(16)), await log.append(tenant, input(17)));
    expect(appended.map((e) => e.sequence)).toEqual([14, 15, 16, 17]);
    expect(await log.verify(tenant)).toEqual({ valid: true, checked: 5 });
    expect(await cold.log.verify(cold.scope)).toEqual({ valid: true, checked: 5 });
  });

  it('keeps appends going when every event is purged, and drops the kept head once a later block exists', async () => {
    const { tenant, log, events, table, jump } = await logWith(10, 0);
    const tenth = at(events, 9);
    expect(await log.purgeBefore(tenant, CUTOFF)).toEqual({
      purged: 10,
      checkpoint: { sequence: 10, hash: tenth.hash, lastEventId: tenth.id },
    });
    // Block 1 is wholly purged but holds the chain's head, so it stays; block 0 is gone.
    expect(await blockRows(table, tenant.tenantId)).toEqual([`1/${auditKeys.headRow}`]);
    expect(await log.verify(tenant)).toEqual({ valid: true, checked: 0 });
    expect(await sequences(log, tenant)).toEqual([]);

    jump(RECENT);
    const next = await log.append(tenant, input(11));
    expect(next).toMatchObject({ sequence: 11, previousHash: tenth.hash });
    const cold = coldInstance(tenant);
    expect(await cold.log.append(cold.scope, input(12))).toMatchObject({
      sequence: 12,
      previousHash: next.hash,
    });
    expect(await log.verify(tenant)).toEqual({ valid: true, checked: 2 });

    // Nothing new expires, but block 1 is no longer the tail: its head goes now.
    expect(await log.purgeBefore(tenant, CUTOFF)).toMatchObject({ purged: 0 });
    expect((await blockRows(table, tenant.tenantId)).filter((row) => row.startsWith('1/'))).toEqual([]);
    expect(await cold.log.verify(cold.scope)).toEqual({ valid: true, checked: 2 });
    expect(await coldInstance(tenant).log.append(cold.scope, input(13))).toMatchObject({ sequence: 13 });
  });

  it('still reports tampering with an event that remains after a purge', async () => {
    const { tenant, log, events, table } = await logWith(12, 8);
    await log.purgeBefore(tenant, CUTOFF);
    const key = (sequence: number) => auditKeys.event(tenant.tenantId, sequence, BLOCK_SIZE);

    await table.updateEntity({ ...key(15), details: JSON.stringify({ n: 1500 }) }, 'Merge');
    expect(await log.verify(tenant)).toEqual({
      valid: false,
      checked: 3,
      firstBrokenEventId: at(events, 14).id,
    });

    // The first remaining event must still link to the checkpoint.
    await table.updateEntity({ ...key(15), details: JSON.stringify({ n: 15 }) }, 'Merge');
    await table.deleteEntity(key(13).partitionKey, key(13).rowKey);
    expect(await log.verify(tenant)).toEqual({
      valid: false,
      checked: 1,
      firstBrokenEventId: at(events, 13).id,
    });
  });

  it('reads and writes in proportion to what expires, not to what is stored', async () => {
    const work = async (old: number, recent: number) => {
      const rec = recorder();
      const { tenant, log } = await logWith(old, recent, rec.storage);
      rec.reset();
      const { purged } = await log.purgeBefore(tenant, CUTOFF);
      return {
        purged,
        rowsRead: rec.rowsRead(),
        queries: rec.requests.filter((r) => r.startsWith('GET') && r.includes('$filter=')).length,
        requests: rec.requests.length,
      };
    };

    const small = await work(10, 20);
    const large = await work(10, 200);
    // Of the 200 recent events none is read: the query of the first block after the purged ones returns none.
    expect(large).toEqual({ purged: 10, rowsRead: 10, queries: 3, requests: small.requests });
    expect(small).toEqual(large);
    // Twice the expired events, about twice the work (a list, a transaction, a head and two writes per block).
    const double = await work(20, 20);
    expect(double).toMatchObject({ purged: 20, rowsRead: 20, queries: 5 });
    expect(double.requests - large.requests).toBe(2 * 5);
  });

  it('lets a stale instance append after the tail when a purge removed the blocks it last wrote', async () => {
    const tenant = testTenantScope();
    // Instance A wrote last at the end of block 0 (a cached tail that fills it), instance C inside block 0.
    const writerA = coldInstance(tenant, settableClock().clock);
    const writerC = coldInstance(tenant, settableClock().clock);
    const clockB = settableClock();
    const writerB = coldInstance(tenant, clockB.clock);
    for (let n = 1; n <= 3; n++) await writerC.log.append(writerC.scope, input(n));
    for (let n = 4; n <= 5; n++) await writerA.log.append(writerA.scope, input(n));
    // Instance B writes blocks 1 and 2; the purge then removes blocks 0 and 1, heads included.
    for (let n = 6; n <= 12; n++) {
      if (n === 11) clockB.jump(RECENT);
      await writerB.log.append(writerB.scope, input(n));
    }
    expect(await writerB.log.purgeBefore(writerB.scope, CUTOFF)).toMatchObject({ purged: 10 });

    // Neither cached tail may open or extend a purged block: both find the real tail.
    const fromA = await writerA.log.append(writerA.scope, input(13));
    const fromC = await writerC.log.append(writerC.scope, input(14));
    expect([fromA.sequence, fromC.sequence]).toEqual([13, 14]);
    expect(await writerB.log.verify(writerB.scope)).toEqual({ valid: true, checked: 4 });
    expect(await sequences(writerB.log, writerB.scope)).toEqual([11, 12, 13, 14]);
  });

  it('lets a cold instance find the tail while a purge deletes the heads it is looking for', async () => {
    const rec = recorder();
    const { tenant, events } = await logWith(12, 3);
    const purger = coldInstance(tenant);
    const appender = new TableAuditLog(settableClock(RECENT).clock, { blockSize: BLOCK_SIZE });
    const scope = testTenantScope(rec.storage, tenant.geography, tenant.tenantId);
    // The appender has read the (absent) checkpoint; the purge runs before it reads the head of block 0.
    let armed = true;
    rec.beforeEach(async (request) => {
      if (!armed || !decodeURIComponent(request.url).includes(auditKeys.headRow)) return;
      armed = false;
      await purger.log.purgeBefore(purger.scope, CUTOFF);
    });

    expect(await appender.append(scope, input(16))).toMatchObject({
      sequence: 16,
      previousHash: at(events, 14).hash,
    });
    expect(armed).toBe(false);
    expect(await appender.verify(scope)).toEqual({ valid: true, checked: 4 });
  });

  it('verifies validly while a purge moves the checkpoint under it', async () => {
    const rec = recorder();
    const { tenant, events } = await logWith(12, 8);
    const purger = coldInstance(tenant);
    const verifier = new TableAuditLog(settableClock().clock, { blockSize: BLOCK_SIZE });
    const scope = testTenantScope(rec.storage, tenant.geography, tenant.tenantId);
    // The verifier has read the checkpoint and the tail; the purge runs just before its query of the events.
    let armed = true;
    rec.beforeEach(async (request) => {
      if (!armed || !decodeURIComponent(request.url).includes('$filter=')) return;
      armed = false;
      await purger.log.purgeBefore(purger.scope, CUTOFF);
    });

    expect(await verifier.verify(scope)).toEqual({ valid: true, checked: 8 });
    expect(armed).toBe(false);
    expect(await sequences(verifier, scope)).toEqual(events.slice(12).map((e) => e.sequence));
  });

  it('verifies validly while appends land after it located the tail', async () => {
    const rec = recorder();
    const { tenant, log } = await logWith(3, 9);
    const verifier = new TableAuditLog(settableClock().clock, { blockSize: BLOCK_SIZE });
    const scope = testTenantScope(rec.storage, tenant.geography, tenant.tenantId);
    let armed = true;
    rec.beforeEach(async (request) => {
      if (!armed || !decodeURIComponent(request.url).includes('$filter=')) return;
      armed = false;
      // Past the head the verifier read (12), in its block and in the next one.
      for (let n = 13; n <= 17; n++) await log.append(tenant, input(n));
    });

    expect(await verifier.verify(scope)).toEqual({ valid: true, checked: 17 });
    expect(armed).toBe(false);
    // And a purge running as well.
    armed = true;
    rec.beforeEach(async (request) => {
      if (!armed || !decodeURIComponent(request.url).includes('$filter=')) return;
      armed = false;
      await log.purgeBefore(tenant, CUTOFF);
      await log.append(tenant, input(18));
    });
    expect(await verifier.verify(scope)).toEqual({ valid: true, checked: 15 });
  });

  it('runs beside appends', async () => {
    const { tenant, log } = await logWith(12, 3);
    const other = coldInstance(tenant);
    const [purge, ...appended] = await Promise.all([
      other.log.purgeBefore(other.scope, CUTOFF),
      ...range(16, 25).map((n) => log.append(tenant, input(n))),
    ]);
    expect(purge).toMatchObject({ purged: 12 });
    expect(appended.map((e) => (e as AuditEvent).sequence)).toEqual(range(16, 25));
    expect(await log.verify(tenant)).toEqual({ valid: true, checked: 13 });
  });
});

describe('audit routes', () => {
  it('only read: no HTTP route deletes or edits audit events (the purge is retention-only)', () => {
    const auditRoutes = functionRegistry.flatMap((fn) =>
      fn.kind === 'http' && fn.route.includes('audit') ? [fn] : [],
    );
    expect(auditRoutes.length).toBeGreaterThan(0);
    for (const fn of auditRoutes) expect(Object.keys(fn.operations)).toEqual(['GET']);
  });
});

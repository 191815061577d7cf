// Events resolve their tenant from a directory entry cached for the write fence's bound (SPEC §8), not by a
// read of the global `tenants` table each; passive deletion waits twice that bound after `purging`, so what
// an instance still writes on a cached entry lands before the purge, not behind it.
import { randomUUID } from 'node:crypto';

import type { PipelinePolicy } from '@azure/core-rest-pipeline';

import { personalDataEvents } from '../../../functions/personalDataEvents';
import { createServices, type Services } from '../../../shared/composition';
import { invokeQueue } from '../../../shared/hosting/invoke';
import { personalDataEventSchema } from '../../../shared/records/personalDataEvent';
import type { TenantScope } from '../../../shared/residency/tenantDirectory';
import { TABLES } from '../../../shared/storage/names';
import { invocationContext } from '../../support/invocation';
import { testConfig } from '../../support/testStorage';

// A bound wide enough for the steps that must fall within it, also on a loaded CI machine.
const FENCE = { RESIDENCY_FENCE_SECONDS: '1.5' };
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Services of one instance, counting its point reads of each tenant's directory entry. */
function instance() {
  const reads = new Map<string, number>();
  const counter: PipelinePolicy = {
    name: 'countDirectoryReads',
    sendRequest: (request, next) => {
      const match = /\/tenants\(PartitionKey='([^']+)'/.exec(decodeURIComponent(request.url));
      if (request.method === 'GET' && match) reads.set(match[1]!, (reads.get(match[1]!) ?? 0) + 1);
      return next(request);
    },
  };
  const services = createServices(testConfig(FENCE), {
    storage: { tablePolicies: [{ policy: counter, position: 'perCall' }] },
  });
  return { services, readsOf: (tenantId: string) => reads.get(tenantId) ?? 0 };
}

const deliver = (services: Services, message: unknown) =>
  invokeQueue(personalDataEvents, services, message, invocationContext('personalDataEvents'));

const adele = { upn: 'adele@contoso.com' };
const upserted = (tenantId: string, recordId: string) => ({
  type: 'record.upserted',
  tenantId,
  eventId: `up-${recordId}`,
  category: 'directory',
  recordId,
  subject: adele,
  occurredAt: new Date().toISOString(),
  data: { recordId },
});

async function provision(services: Services): Promise<TenantScope> {
  const tenantId = randomUUID();
  await deliver(services, {
    type: 'tenant.provisioned',
    tenantId,
    eventId: `p-${tenantId}`,
    countryCode: 'DE',
    displayName: 'T',
  });
  return services.directory.scopeOf((await services.directory.get(tenantId))!);
}

async function recordsOf(services: Services, tenant: TenantScope): Promise<number> {
  const { subjectKey } = await services.records.subjectOf(tenant, adele);
  return (await services.records.countByCategory(tenant, subjectKey)).directory ?? 0;
}

async function rowsOf(tenant: TenantScope): Promise<Record<string, number>> {
  const left: Record<string, number> = {};
  for (const name of Object.values(TABLES)) {
    const table = await tenant.account.table(name);
    for await (const _row of table.listEntities({
      queryOptions: {
        filter: `PartitionKey ge '${tenant.tenantId}' and PartitionKey lt '${tenant.tenantId}~'`,
      },
    })) {
      left[name] = (left[name] ?? 0) + 1;
    }
  }
  return left;
}

describe('events resolve their tenant from the entry cached for the write fence', () => {
  it('reads the directory once for the events within the bound, and again after it', async () => {
    const { services, readsOf } = instance();
    const tenant = await provision(services);
    await deliver(services, upserted(tenant.tenantId, 'warm-up')); // creates the tenant's and subject's keys
    await sleep(1600);

    const before = readsOf(tenant.tenantId);
    const started = performance.now();
    for (let i = 0; i < 4; i++) await deliver(services, upserted(tenant.tenantId, `single-${i}`));
    await deliver(services, {
      type: 'records.upserted',
      tenantId: tenant.tenantId,
      eventId: `batch-${tenant.tenantId}`,
      records: [0, 1].map((i) => {
        const { type: _type, tenantId: _tenantId, ...item } = upserted(tenant.tenantId, `batched-${i}`);
        return item;
      }),
    });
    // Guards the premise: all of them fell within the bound of the first one's read.
    expect(performance.now() - started).toBeLessThan(1500);
    expect(readsOf(tenant.tenantId) - before).toBe(1);
    expect(await recordsOf(services, tenant)).toBe(7);

    await sleep(1600);
    await deliver(services, upserted(tenant.tenantId, 'later'));
    expect(readsOf(tenant.tenantId) - before).toBe(2);
    expect(await recordsOf(services, tenant)).toBe(8);
  });

  it('passive deletion waits out an instance that holds the entry cached, so nothing lands behind it', async () => {
    const a = instance();
    const b = instance();
    const tenant = await provision(b.services);
    await deliver(a.services, upserted(tenant.tenantId, 'warm-up')); // keys made, so A's events are quick
    const longAgo = new Date(Date.now() - 40 * 86_400_000).toISOString();
    await b.services.directory.endSubscription(tenant.tenantId, longAgo);
    await sleep(1600);

    // A reads the entry afresh (subscription ended: still written) and holds it for 1.5 s.
    const aRead = performance.now();
    const event = (recordId: string) => personalDataEventSchema.parse(upserted(tenant.tenantId, recordId));
    await a.services.events.apply(event('before'));
    expect(a.readsOf(tenant.tenantId)).toBe(2);

    // B starts passive deletion: `purging` is set, then it waits 2 x 1.5 s before it deletes.
    let purgeDone = false;
    const purge = b.services.retention
      .purgeTenant({ tenantId: tenant.tenantId, day: new Date().toISOString().slice(0, 10) })
      .finally(() => (purgeDone = true));
    await sleep(300);
    // A still holds its entry from before `purging`: the event is taken (no read) and lands, before B deletes.
    expect(performance.now() - aRead).toBeLessThan(1500);
    await a.services.events.apply(event('during'));
    const landedWhilePurging = !purgeDone;
    expect(a.readsOf(tenant.tenantId)).toBe(2);
    const heldMeanwhile = await recordsOf(a.services, tenant);

    expect(await purge).toMatchObject({ tenantPurged: true });
    expect(await rowsOf(tenant)).toEqual({});
    // It had landed, with the two before it, while B was still waiting.
    expect({ landedWhilePurging, heldMeanwhile }).toEqual({ landedWhilePurging: true, heldMeanwhile: 3 });

    // A's cached entry has expired by now: it reads `purging`/`purged` and refuses the event, writing nothing.
    expect(performance.now() - aRead).toBeGreaterThan(1500);
    await expect(a.services.events.apply(event('after'))).rejects.toMatchObject({ code: 'TenantNotFound' });
    expect(a.readsOf(tenant.tenantId)).toBe(3);
    expect(await rowsOf(tenant)).toEqual({});
    expect(await b.services.directory.get(tenant.tenantId)).toMatchObject({ status: 'purged' });
  });

  it('sees a migration flag set by another instance within the bound, and then refuses the events (SPEC §8)', async () => {
    const a = instance();
    const b = instance();
    const tenant = await provision(b.services);
    await deliver(a.services, upserted(tenant.tenantId, 'warm-up')); // keys made, so A's events are quick
    await sleep(1600);
    const event = (recordId: string) => personalDataEventSchema.parse(upserted(tenant.tenantId, recordId));

    // A reads the entry afresh and holds it; B sets the migration flag (the mover then waits twice the bound
    // before it copies anything, so what A writes on its cached entry meanwhile is still copied).
    const aRead = performance.now();
    await a.services.events.apply(event('before'));
    const migrationId = randomUUID();
    await b.services.directory.beginMigration(tenant.tenantId, {
      migrationId,
      targetGeography: 'CH',
      startedAt: new Date().toISOString(),
    });
    await a.services.events.apply(event('during'));
    expect(performance.now() - aRead).toBeLessThan(1500);
    expect(a.readsOf(tenant.tenantId)).toBe(2);
    expect(await recordsOf(a.services, tenant)).toBe(3);

    // Once its entry is older than the bound, A reads the flag and refuses the event: nothing is written,
    // and the event is retried after the move (personalDataEvents puts it back, writesDuringMove.test.ts).
    await sleep(Math.max(0, 1600 - (performance.now() - aRead)));
    await expect(a.services.events.apply(event('after'))).rejects.toMatchObject({ code: 'TenantMigrating' });
    expect(a.readsOf(tenant.tenantId)).toBe(3);
    expect(await recordsOf(a.services, tenant)).toBe(3);
    await b.services.directory.endMigration(tenant.tenantId, migrationId);
  });
});

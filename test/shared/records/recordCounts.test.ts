// Record counters on Azurite: concurrent changes from many writers are all kept (shards under ETags), and a
// tenant's counters are its own.
import type { PipelinePolicy } from '@azure/core-rest-pipeline';

import { RecordCounts } from '../../../shared/records/recordCounts';
import { testStorage, testTenantScope } from '../../support/testStorage';

describe('record counters', () => {
  it('keep every one of many concurrent changes, per tenant', async () => {
    const storage = testStorage();
    const tenant = testTenantScope(storage);
    const other = testTenantScope(storage);
    // Four instances, each group-committing its own changes, meeting each other at the shards.
    const instances = Array.from({ length: 4 }, () => new RecordCounts());
    const counts = instances[0]!;
    await Promise.all([
      ...Array.from({ length: 60 }, (_, i) => instances[i % 4]!.add(tenant, { device: 1 })),
      ...Array.from({ length: 20 }, (_, i) => instances[i % 4]!.add(tenant, { device: -1, alert: 2 })),
      counts.add(other, { device: 7 }),
    ]);
    const totals = await counts.totals(tenant);
    expect(totals.device).toBe(40);
    expect(totals.alert).toBe(40);
    expect(totals.systemLog).toBe(0);
    expect((await counts.totals(other)).device).toBe(7);
  });

  it('gather the changes of a batch into one counter change, written even when the batch fails', async () => {
    let requests = 0;
    const counting: PipelinePolicy = {
      name: 'countRequests',
      sendRequest: (request, next) => {
        requests++;
        return next(request);
      },
    };
    const storage = testStorage({ tablePolicies: [{ policy: counting, position: 'perCall' }] });
    const tenant = testTenantScope(storage);
    const counts = new RecordCounts();
    await counts.add(tenant, { usage: 1 }); // the table is made sure of once per client
    requests = 0;
    await counts.gathered(async () => {
      for (let i = 0; i < 10; i++) await counts.add(tenant, { device: 1 });
      await counts.add(tenant, { usage: -1 });
    });
    expect(requests).toBe(2); // one read and one write of a shard, for eleven changes
    await expect(
      counts.gathered(async () => {
        await counts.add(tenant, { device: 2 });
        throw new Error('an item failed');
      }),
    ).rejects.toThrow('an item failed');
    const totals = await counts.totals(tenant);
    expect({ device: totals.device, usage: totals.usage }).toEqual({ device: 12, usage: 0 });
  });

  it("group-commit an instance's concurrent changes of a tenant: one write in flight, the rest in the next", async () => {
    let writes = 0;
    let failNext = false;
    const counting: PipelinePolicy = {
      name: 'countWrites',
      sendRequest: async (request, next) => {
        if (request.method === 'GET') return next(request);
        writes++;
        if (failNext) {
          failNext = false;
          throw new Error('storage refused the write');
        }
        return next(request);
      },
    };
    const storage = testStorage({ tablePolicies: [{ policy: counting, position: 'perCall' }] });
    const tenant = testTenantScope(storage);
    const counts = new RecordCounts();
    await counts.add(tenant, { usage: 1 }); // the table is made sure of once per client
    writes = 0;
    await Promise.all(Array.from({ length: 50 }, () => counts.add(tenant, { device: 1 })));
    expect(writes).toBe(1); // fifty changes made side by side: one write
    writes = 0;
    const first = counts.add(tenant, { device: 1 });
    await new Promise((resolve) => setImmediate(resolve)); // its write is under way
    await Promise.all([first, ...Array.from({ length: 49 }, () => counts.add(tenant, { device: 1 }))]);
    expect(writes).toBe(2); // the first change alone, the 49 that came while it was written together
    expect((await counts.totals(tenant)).device).toBe(100);

    // A write that fails fails every change it held; the next changes are written on their own.
    failNext = true;
    const held = await Promise.allSettled(Array.from({ length: 5 }, () => counts.add(tenant, { alert: 1 })));
    expect(held.map((r) => r.status)).toEqual(Array(5).fill('rejected'));
    await counts.add(tenant, { alert: 2 });
    expect((await counts.totals(tenant)).alert).toBe(2);
  });
});

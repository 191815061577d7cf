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
    const counts = new RecordCounts();
    await Promise.all([
      ...Array.from({ length: 60 }, () => counts.add(tenant, { device: 1 })),
      ...Array.from({ length: 20 }, () => counts.add(tenant, { device: -1, alert: 2 })),
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
});

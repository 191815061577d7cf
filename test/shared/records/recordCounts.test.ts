// Record counters on Azurite: concurrent changes from many writers are all kept (shards under ETags), and a
// tenant's counters are its own.
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
});

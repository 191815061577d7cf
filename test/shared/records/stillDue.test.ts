// A row whose ETag changed since its expiry entry was made (a residency move copies every row; a redelivered
// event writes the same dates again) still goes when its dates give the entry's action on the entry's day,
// and stays when they do not (replaced by a newer version, deleted, revived).
import { stillDue } from '../../../shared/records/recordRetention';
import { recordExpiries } from '../../../shared/retention/expiryIndex';

const target = { subjectKey: 's', recordRow: 'systemLog_abc', etag: 'W/"old"' };
const occurredAt = '2026-01-10T08:00:00.000Z';
const [entry] = recordExpiries({ category: 'systemLog', occurredAt }, target);

describe('stillDue', () => {
  it('holds for the same dates, the entry being the 30-day delete', () => {
    expect(entry).toMatchObject({ kind: 'record', action: 'delete', day: '2026-02-09' });
    const due = { action: 'delete' as const, day: entry!.day };
    expect(stillDue({ category: 'systemLog', occurredAt }, { ...target, due })).toBe(true);
  });

  it('fails for a newer version, another rule, or a target without the rule it fell due by', () => {
    const due = { action: 'delete' as const, day: entry!.day };
    expect(
      stillDue({ category: 'systemLog', occurredAt: '2026-01-20T08:00:00.000Z' }, { ...target, due }),
    ).toBe(false);
    expect(
      stillDue({ category: 'systemLog', occurredAt }, { ...target, due: { ...due, action: 'anonymise' } }),
    ).toBe(false);
    expect(stillDue({ category: 'systemLog', occurredAt }, target)).toBe(false);
  });
});

import { recordExpiries } from '../../../shared/retention/expiryIndex';
import { dueAt, dueDay, isDue, RETENTION_POLICY } from '../../../shared/retention/retentionPolicy';

const target = { subjectKey: 's', recordRow: 'usage_r' };

describe('retention policy', () => {
  it('counts days and years in UTC, across month ends and leap days', () => {
    expect(dueAt(RETENTION_POLICY.shortLived, new Date('2026-01-31T23:00:00Z')).toISOString()).toBe(
      '2026-03-02T23:00:00.000Z',
    );
    expect(dueAt(RETENTION_POLICY.alertAnonymisation, new Date('2028-01-01T00:00:00Z')).toISOString()).toBe(
      '2028-06-29T00:00:00.000Z',
    );
    expect(dueAt(RETENTION_POLICY.alertDeletion, new Date('2028-02-29T12:00:00Z')).toISOString()).toBe(
      '2030-03-01T12:00:00.000Z',
    );
    expect(dueAt(RETENTION_POLICY.auditEvents, new Date('2026-11-21T00:00:00Z')).toISOString()).toBe(
      '2027-11-21T00:00:00.000Z',
    );
  });

  it('is due on the due day, not the day before', () => {
    const occurred = new Date('2026-10-01T15:30:00Z');
    expect(dueDay(dueAt(RETENTION_POLICY.shortLived, occurred))).toBe('2026-10-31');
    expect(isDue(RETENTION_POLICY.shortLived, occurred, '2026-10-30')).toBe(false);
    expect(isDue(RETENTION_POLICY.shortLived, occurred, '2026-10-31')).toBe(true);
  });

  it('gives each category its entries', () => {
    const at = '2026-01-10T00:00:00.000Z';
    expect(recordExpiries({ category: 'usage', occurredAt: at }, target)).toEqual([
      expect.objectContaining({ action: 'delete', day: '2026-02-09' }),
    ]);
    expect(recordExpiries({ category: 'alert', occurredAt: at }, target)).toEqual([
      expect.objectContaining({ action: 'anonymise', day: '2026-07-09' }),
    ]);
    expect(recordExpiries({ category: 'directory', occurredAt: at }, target)).toEqual([]);
    expect(
      recordExpiries(
        { category: 'directory', occurredAt: at, deletedAt: '2026-03-01T10:00:00.000Z' },
        target,
      ),
    ).toEqual([expect.objectContaining({ action: 'purgeDeleted', day: '2026-03-31' })]);
  });
});

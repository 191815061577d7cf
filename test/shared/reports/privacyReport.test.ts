// The privacy report's pure rules: the default period, median and mean, partial compliance, decline reasons,
// and the purge forecast read from the expiry index's own keys (made here by expiryKeys, so a change of the
// key layout fails this test rather than the report).
import fc from 'fast-check';

import {
  declineReason,
  isPartial,
  mean,
  median,
  PurgeTally,
  reportWindow,
} from '../../../shared/reports/privacyReport';
import {
  anonymousAlertExpiry,
  expiryKeys,
  packageExpiry,
  poisonedEventExpiry,
  recordExpiries,
} from '../../../shared/retention/expiryIndex';

const TENANT = '11111111-2222-4333-8444-555555555555';
const DAY = 86_400_000;

describe('the period', () => {
  it('defaults to the 12 calendar months before now', () => {
    const now = new Date('2026-03-31T12:00:00Z');
    expect(reportWindow({}, now)).toEqual({ from: new Date('2025-03-31T12:00:00Z'), to: now });
    const to = new Date('2024-02-29T00:00:00Z');
    expect(reportWindow({ to }, now).from.toISOString()).toBe('2023-03-01T00:00:00.000Z');
  });
});

describe('days to complete', () => {
  it('median and mean of known values', () => {
    expect(median([3, 10, 20, 1])).toBe(6.5);
    expect(median([5, 1, 9])).toBe(5);
    expect(mean([3, 10, 20, 1])).toBe(8.5);
    expect(median([])).toBeNull();
    expect(mean([])).toBeNull();
  });

  it('the median has as many values at or below it as at or above it', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 1000 }), { minLength: 1, maxLength: 50 }), (values) => {
        const m = median(values)!;
        const below = values.filter((v) => v <= m).length;
        const above = values.filter((v) => v >= m).length;
        expect(below).toBeGreaterThanOrEqual(values.length / 2);
        expect(above).toBeGreaterThanOrEqual(values.length / 2);
        expect(mean(values)! * values.length).toBeCloseTo(values.reduce((a, b) => a + b, 0));
      }),
    );
  });
});

describe('CCPA outcomes', () => {
  it('a rectification with an item not applied is complied with in part; other types in whole', () => {
    const items = (outcomes: string[]) => ({ rectifications: outcomes.map((outcome) => ({ outcome })) });
    expect(isPartial({ type: 'rectify', result: items(['applied', 'DeviceReported']) })).toBe(true);
    expect(isPartial({ type: 'rectify', result: items(['applied', 'applied']) })).toBe(false);
    expect(isPartial({ type: 'delete', result: { counts: {} } })).toBe(false);
  });

  it('the decline reason is the one given when declined', () => {
    const actor = { type: 'user' as const, id: 'dpo' };
    const history = [
      { action: 'create', to: 'received' as const, at: '2026-01-01T00:00:00Z', actor },
      {
        action: 'decline',
        to: 'declined' as const,
        at: '2026-01-02T00:00:00Z',
        actor,
        reason: ' Unfounded ',
      },
    ];
    expect(declineReason({ history })).toBe('Unfounded');
    expect(declineReason({ history: history.slice(0, 1) })).toBe('(no reason given)');
  });
});

describe('the purge forecast', () => {
  it('counts each kind of entry by the horizon its day falls in, already-due entries included', () => {
    const today = '2026-11-25';
    const now = Date.parse(`${today}T10:00:00Z`);
    const keyOf = (entry: Parameters<typeof expiryKeys>[1]) => expiryKeys(TENANT, entry).rowKey;
    const target = (n: number) => ({ subjectKey: `s${n}`, recordRow: `x_r${n}` });
    const iso = (days: number) => new Date(now + days * DAY).toISOString();
    const keys = [
      // Short-lived, due in 5 and in 20 days; one due yesterday, not purged yet.
      ...recordExpiries({ category: 'systemLog', occurredAt: iso(-25) }, target(1)),
      ...recordExpiries({ category: 'usage', occurredAt: iso(-10) }, target(2)),
      ...recordExpiries({ category: 'usage', occurredAt: iso(-31) }, target(3)),
      // An alert: anonymised in 3 days.
      ...recordExpiries({ category: 'alert', occurredAt: iso(-177) }, target(4)),
      // Soft-deleted 2 days ago: purged in 28 days.
      ...recordExpiries({ category: 'device', occurredAt: iso(-100), deletedAt: iso(-2) }, target(5)),
      anonymousAlertExpiry('alert_x', new Date(now - 2 * 365 * DAY + 6 * DAY)),
      packageExpiry('req', 'tenant/req/a.zip.enc', new Date(now - 25 * DAY)),
      poisonedEventExpiry('tenant/e.json', new Date(now - 10 * DAY)),
      // Beyond 30 days: counted nowhere.
      ...recordExpiries({ category: 'usage', occurredAt: iso(5) }, target(6)),
    ].map(keyOf);
    const tally = new PurgeTally(today, [7, 30]);
    tally.add(keys);
    const [week, month] = tally.figures();
    expect(week).toEqual({
      records: { delete: 2, anonymise: 1, purgeDeleted: 0 },
      anonymisedAlerts: 1,
      packages: 1,
      poisonedEvents: 0,
      total: 5,
    });
    expect(month).toEqual({
      records: { delete: 3, anonymise: 1, purgeDeleted: 1 },
      anonymisedAlerts: 1,
      packages: 1,
      poisonedEvents: 1,
      total: 8,
    });
  });
});

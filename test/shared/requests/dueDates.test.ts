import { addCalendarMonths, daysLeft, dueDate } from '../../../shared/requests/dueDates';

const at = (iso: string) => new Date(iso);

describe('addCalendarMonths', () => {
  it.each([
    ['2026-01-15T09:30:00.000Z', 1, '2026-02-15T09:30:00.000Z'],
    ['2026-01-31T10:00:00.000Z', 1, '2026-02-28T10:00:00.000Z'],
    ['2028-01-31T10:00:00.000Z', 1, '2028-02-29T10:00:00.000Z'],
    ['2028-02-29T00:00:00.000Z', 1, '2028-03-29T00:00:00.000Z'],
    ['2026-03-31T23:59:59.999Z', 1, '2026-04-30T23:59:59.999Z'],
    ['2026-12-31T12:00:00.000Z', 1, '2027-01-31T12:00:00.000Z'],
    ['2026-11-30T12:00:00.000Z', 3, '2027-02-28T12:00:00.000Z'],
    ['2027-11-30T12:00:00.000Z', 3, '2028-02-29T12:00:00.000Z'],
  ])('%s + %i month(s) is %s', (from, months, expected) => {
    expect(addCalendarMonths(at(from), months).toISOString()).toBe(expected);
  });
});

describe('dueDate', () => {
  it('gives GDPR one calendar month: 31 January is due at the end of February', () => {
    expect(dueDate(at('2026-01-31T08:00:00Z'), 'GDPR').toISOString()).toBe('2026-02-28T08:00:00.000Z');
  });

  it('gives GDPR in a leap year the 29th of February', () => {
    expect(dueDate(at('2028-01-30T08:00:00Z'), 'GDPR').toISOString()).toBe('2028-02-29T08:00:00.000Z');
  });

  it('extends GDPR by two further months counted from receipt, not from the clamped first deadline', () => {
    // 31 Jan + 1 month = 28 Feb; the extended deadline is 30 April (31 Jan + 3 months), not 28 April.
    expect(dueDate(at('2026-01-31T08:00:00Z'), 'GDPR', true).toISOString()).toBe('2026-04-30T08:00:00.000Z');
  });

  it('gives CCPA 45 days, and 90 days once extended', () => {
    expect(dueDate(at('2026-12-20T00:00:00Z'), 'CCPA').toISOString()).toBe('2027-02-03T00:00:00.000Z');
    expect(dueDate(at('2026-12-20T00:00:00Z'), 'CCPA', true).toISOString()).toBe('2027-03-20T00:00:00.000Z');
  });

  it('counts CCPA days across a leap day', () => {
    expect(dueDate(at('2028-02-01T00:00:00Z'), 'CCPA').toISOString()).toBe('2028-03-17T00:00:00.000Z');
  });
});

describe('daysLeft', () => {
  const due = at('2026-02-28T08:00:00Z');
  it('rounds partial days up', () => {
    expect(daysLeft(due, at('2026-02-27T09:00:00Z'))).toBe(1);
    expect(daysLeft(due, at('2026-02-26T08:00:00Z'))).toBe(2);
  });
  it('is 0 at the deadline and negative once overdue', () => {
    expect(daysLeft(due, due)).toBe(0);
    expect(daysLeft(due, at('2026-03-02T08:00:01Z'))).toBe(-2);
  });
});

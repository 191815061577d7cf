import { deadlineFlag, DUE_SOON_WINDOW_MS } from '../../../shared/requests/requestDeadlines';

const dueAt = new Date('2026-03-10T08:00:00.000Z');
const before = (ms: number) => new Date(dueAt.getTime() - ms);
const DAY_MS = 24 * 60 * 60 * 1000;

describe('deadlineFlag', () => {
  it('puts the window at 7 days', () => {
    expect(DUE_SOON_WINDOW_MS).toBe(7 * DAY_MS);
  });

  it.each([
    ['30 days left', before(30 * DAY_MS), undefined],
    ['7 days and 1 ms left', before(7 * DAY_MS + 1), undefined],
    ['exactly 7 days left', before(7 * DAY_MS), 'dueSoon'],
    ['7 days less 1 ms left', before(7 * DAY_MS - 1), 'dueSoon'],
    ['1 ms left', before(1), 'dueSoon'],
    ['the due instant itself (no time left)', dueAt, 'overdue'],
    ['1 ms past the due instant', before(-1), 'overdue'],
    ['40 days past the due instant', before(-40 * DAY_MS), 'overdue'],
  ])('with %s is %s', (_case, now, expected) => {
    expect(deadlineFlag(dueAt, now)).toBe(expected);
  });

  it('keeps the time of day: 7 days before, an hour early, no flag yet; an hour late, due soon', () => {
    expect(deadlineFlag(dueAt, new Date('2026-03-03T07:00:00.000Z'))).toBeUndefined();
    expect(deadlineFlag(dueAt, new Date('2026-03-03T09:00:00.000Z'))).toBe('dueSoon');
  });
});

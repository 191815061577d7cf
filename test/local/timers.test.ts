import type { Timer } from '@azure/functions';

import { nextOccurrence } from '../../local/timers';
import { startHost, stopHosts, timerFunction, waitFor } from './localHostFixtures';

afterEach(stopHosts);

describe('LocalHost timers', () => {
  it('runs a timer on its schedule', async () => {
    const timers: Timer[] = [];
    await startHost([
      timerFunction('everySecond', '* * * * * *', async (_services, timer) => void timers.push(timer)),
    ]);

    await waitFor(() => timers.length >= 2, 'two scheduled runs', 5_000);

    expect(timers[0]).toMatchObject({ isPastDue: false, scheduleStatus: { last: '0001-01-01T00:00:00' } });
    // As on the Azure host, a run sees its own occurrence as `next` and the previous run's as `last`.
    expect(timers[1]!.scheduleStatus.last).toBe(timers[0]!.scheduleStatus.next);
    expect(Date.parse(timers[1]!.scheduleStatus.next) - Date.parse(timers[0]!.scheduleStatus.next)).toBe(
      1000,
    );
  });
});

describe('nextOccurrence', () => {
  const next = (schedule: string, after: string) => nextOccurrence(schedule, new Date(after)).toISOString();

  it('runs 0 0 2 * * * at 02:00 UTC, across month, leap-day and year ends', () => {
    expect(next('0 0 2 * * *', '2024-01-31T02:00:00.000Z')).toBe('2024-02-01T02:00:00.000Z');
    expect(next('0 0 2 * * *', '2024-02-28T03:00:00.000Z')).toBe('2024-02-29T02:00:00.000Z');
    expect(next('0 0 2 * * *', '2024-02-29T02:00:00.001Z')).toBe('2024-03-01T02:00:00.000Z');
    expect(next('0 0 2 * * *', '2024-04-30T01:59:59.999Z')).toBe('2024-04-30T02:00:00.000Z');
    expect(next('0 0 2 * * *', '2023-12-31T23:00:00.000Z')).toBe('2024-01-01T02:00:00.000Z');
  });

  it('runs 0 */5 * * * * every five minutes, into the next month and year', () => {
    expect(next('0 */5 * * * *', '2024-04-30T23:58:30.000Z')).toBe('2024-05-01T00:00:00.000Z');
    expect(next('0 */5 * * * *', '2023-12-31T23:55:00.000Z')).toBe('2024-01-01T00:00:00.000Z');
    expect(next('0 */5 * * * *', '2024-02-29T23:50:00.000Z')).toBe('2024-02-29T23:55:00.000Z');
  });

  it('requires both the day and the day of week when a schedule restricts both, as NCrontab does', () => {
    // Friday the 13th, not every Friday and every 13th.
    expect(next('0 0 0 13 * 5', '2024-01-01T00:00:00.000Z')).toBe('2024-09-13T00:00:00.000Z');
  });

  it('refuses a schedule without the seconds field', () => {
    expect(() => nextOccurrence('0 2 * * *', new Date())).toThrow(/six fields/);
  });
});

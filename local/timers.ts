// The local host's timer trigger: NCRONTAB schedules in UTC, one run at a time per timer, occurrences missed
// meanwhile skipped, and each run handed the schedule status the Azure host's schedule monitor would keep.
import type { Timer } from '@azure/functions';
import { CronExpressionParser } from 'cron-parser';

import type { TimerFunction } from '../shared/hosting/functionDefinition';
import { describeError, type HostLog } from './hostLog';

/** setTimeout cannot wait longer than this; longer waits for a timer are taken in steps. */
const MAX_TIMEOUT_MS = 2 ** 31 - 1;

export type RunTimerFunction = (fn: TimerFunction, timer: Timer) => Promise<void>;

/** Runs the timer functions on their schedules until stopped. */
export class TimerSchedules {
  private readonly handles = new Set<NodeJS.Timeout>();
  /**
   * What the Azure host's schedule monitor would hold for a timer: `last` is the occurrence of the last run,
   * `next` the occurrence awaited. A run receives the status as it was before the run, so `next` is its own
   * occurrence.
   */
  private readonly status = new Map<string, Timer['scheduleStatus']>();
  private stopped = false;

  constructor(
    private readonly run: RunTimerFunction,
    private readonly log: HostLog,
    /** Tells the host about a run, so that a stop waits for it. */
    private readonly track: (run: Promise<void>) => void,
  ) {}

  /** Schedules the timer's next occurrence from now on. */
  start(fn: TimerFunction): void {
    this.schedule(fn, undefined, nextOccurrence(fn.schedule, new Date()));
  }

  /** Runs the timer function once, now, with the timer's current schedule status. */
  runNow(fn: TimerFunction): Promise<void> {
    const timer: Timer = {
      isPastDue: false,
      schedule: { adjustForDST: false },
      scheduleStatus: this.status.get(fn.name) ?? {
        last: '0001-01-01T00:00:00',
        next: nextOccurrence(fn.schedule, new Date()).toISOString(),
        lastUpdated: new Date().toISOString(),
      },
    };
    return this.run(fn, timer);
  }

  /** Cancels every occurrence awaited; a run under way finishes, and schedules nothing after it. */
  stop(): void {
    this.stopped = true;
    for (const handle of this.handles) clearTimeout(handle);
    this.handles.clear();
  }

  private schedule(fn: TimerFunction, last: Date | undefined, due: Date): void {
    this.status.set(fn.name, {
      // The Azure host reports DateTime.MinValue before the first run.
      last: last?.toISOString() ?? '0001-01-01T00:00:00',
      next: due.toISOString(),
      lastUpdated: new Date().toISOString(),
    });
    this.arm(fn, due);
  }

  private arm(fn: TimerFunction, due: Date): void {
    if (this.stopped) return;
    const wait = due.getTime() - Date.now();
    const handle = setTimeout(
      () => {
        this.handles.delete(handle);
        if (Date.now() < due.getTime()) return this.arm(fn, due);
        this.track(this.fire(fn, due));
      },
      Math.max(0, Math.min(wait, MAX_TIMEOUT_MS)),
    );
    this.handles.add(handle);
  }

  private async fire(fn: TimerFunction, due: Date): Promise<void> {
    try {
      await this.runNow(fn);
    } catch (error) {
      this.log('error', `[${fn.name}] failed: ${describeError(error)}`);
    }
    // Like the Azure host's singleton timer: the next run waits for this one, and occurrences missed meanwhile
    // are skipped rather than run in a burst.
    this.schedule(fn, due, nextOccurrence(fn.schedule, new Date(Math.max(due.getTime(), Date.now()))));
  }
}

/**
 * The first occurrence of an NCRONTAB schedule (`{second} {minute} {hour} {day} {month} {day-of-week}`, UTC)
 * strictly after `after`. As in NCrontab, a schedule restricting both day and day-of-week needs both to match.
 */
export function nextOccurrence(schedule: string, after: Date): Date {
  if (schedule.trim().split(/\s+/).length !== 6) {
    throw new Error(
      `Schedule "${schedule}" is not NCRONTAB with six fields ({second} {minute} {hour} {day} {month} {day-of-week}).`,
    );
  }
  const expression = CronExpressionParser.parse(schedule, { currentDate: after, tz: 'UTC' });
  const { dayOfMonth, dayOfWeek } = expression.fields;
  // cron-parser follows Vixie cron (either day field may match); NCrontab requires both.
  const bothDays = !dayOfMonth.isWildcard && !dayOfWeek.isWildcard;
  for (let i = 0; i < 10_000; i++) {
    const candidate = expression.next().toDate();
    if (!bothDays) return candidate;
    const days: readonly unknown[] = dayOfMonth.values;
    const weekdays: readonly unknown[] = dayOfWeek.values;
    if (days.includes(candidate.getUTCDate()) && weekdays.includes(candidate.getUTCDay())) return candidate;
  }
  throw new Error(`Schedule "${schedule}" has no occurrence that matches both its day and day-of-week.`);
}

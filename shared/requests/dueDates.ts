// Legal deadlines, as pure functions of the receipt time and the regulation. GDPR Art. 12(3): one month
// from receipt, extendable by two further months; CCPA §1798.130: 45 days, extendable once by 45 days.
import type { Regulation } from './dataSubjectRequest';

const DAY_MS = 24 * 60 * 60 * 1000;

/** Adds calendar months in UTC; a day that does not exist in the target month becomes its last day. */
export function addCalendarMonths(from: Date, months: number): Date {
  const year = from.getUTCFullYear();
  const month = from.getUTCMonth() + months;
  const lastDay = new Date(Date.UTC(year, month + 1, 0)).getUTCDate();
  const day = Math.min(from.getUTCDate(), lastDay);
  return new Date(
    Date.UTC(
      year,
      month,
      day,
      from.getUTCHours(),
      from.getUTCMinutes(),
      from.getUTCSeconds(),
      from.getUTCMilliseconds(),
    ),
  );
}

const addDays = (from: Date, days: number): Date => new Date(from.getTime() + days * DAY_MS);

/** When a request must be answered; `extended` counts the extension from receipt, not from the first due date. */
export function dueDate(receivedAt: Date, regulation: Regulation, extended = false): Date {
  switch (regulation) {
    case 'GDPR':
      return addCalendarMonths(receivedAt, extended ? 3 : 1);
    case 'CCPA':
      return addDays(receivedAt, extended ? 90 : 45);
  }
}

/** Whole days until the deadline, rounded up; 0 on the due day's last stretch, negative once overdue. */
export function daysLeft(dueAt: Date, now: Date): number {
  return Math.ceil((dueAt.getTime() - now.getTime()) / DAY_MS);
}

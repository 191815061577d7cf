// Requests as CSV for record keeping (SPEC §9, GET .../dsr with Accept: text/csv): one row per request with
// when it was received, its type, regulation and status, the decision and its reason, when it was completed
// and how many days that took. Cells are quoted per RFC 4180, and a cell that a spreadsheet would run as a
// formula (= + - @ tab, carriage return) is prefixed with a quote. Pure.
import type { DataSubjectRequest } from './dataSubjectRequest';

export const CSV_COLUMNS = [
  'id',
  'received',
  'type',
  'regulation',
  'status',
  'decision',
  'decisionReason',
  'completed',
  'daysTaken',
] as const;

const DECISIONS: Record<string, string> = { approve: 'approved', decline: 'declined', cancel: 'cancelled' };
const DAY_MS = 24 * 60 * 60 * 1000;

export function csvCell(value: string): string {
  const safe = /^[=+\-@\t\r]/.test(value) ? `'${value}` : value;
  return /[",\r\n]/.test(safe) ? `"${safe.replaceAll('"', '""')}"` : safe;
}

export const csvLine = (cells: readonly string[]): string => `${cells.map(csvCell).join(',')}\r\n`;

export const csvHeader = (): string => csvLine(CSV_COLUMNS);

/** The row of one request. */
export function csvRow(
  request: Pick<
    DataSubjectRequest,
    'id' | 'receivedAt' | 'type' | 'regulation' | 'status' | 'history' | 'decision'
  >,
): string {
  const decided = [...request.history].reverse().find((entry) => entry.action in DECISIONS);
  const completed = [...request.history].reverse().find((entry) => entry.to === 'completed');
  const reason = decided?.reason ?? (decided?.action === 'approve' ? '' : (request.decision?.reason ?? ''));
  const days = completed ? (Date.parse(completed.at) - Date.parse(request.receivedAt)) / DAY_MS : undefined;
  return csvLine([
    request.id,
    request.receivedAt,
    request.type,
    request.regulation,
    request.status,
    decided ? DECISIONS[decided.action]! : '',
    reason,
    completed?.at ?? '',
    days === undefined ? '' : days.toFixed(1),
  ]);
}

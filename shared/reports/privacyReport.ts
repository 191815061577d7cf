// The privacy report's figures (SPEC §9), computed from what the report service gathered. Pure: every rule
// of what counts where is here, so each figure can be proven on data whose answer is known.
import { daysLeft } from '../requests/dueDates';
import {
  type DataSubjectRequest,
  type RequestStatus,
  REGULATIONS,
  REQUEST_STATUSES,
  REQUEST_TYPES,
  type RequestType,
} from '../requests/dataSubjectRequest';
import { RECORD_CATEGORIES, type RecordCategory } from '../vocabulary/categories';

const DAY_MS = 24 * 60 * 60 * 1000;
/** A request is due soon when its due date is less than this far away (as the deadline timer flags it). */
export const DUE_SOON_DAYS = 7;
/** The purge forecast's horizons, in days from today. */
export const FORECAST_DAYS = [7, 30] as const;
/** Requests listed by name under overdue and due soon (the counts are always whole). */
export const LISTED_REQUESTS = 100;

/**
 * Requests that still await an answer: a failed request holds nothing back but is not answered either, so
 * its deadline still runs (SPEC §5).
 */
export const OPEN_STATUSES: readonly RequestStatus[] = [
  'received',
  'discovering',
  'awaitingReview',
  'inProgress',
  'failed',
];

export interface ReportWindow {
  from: Date;
  to: Date;
}

/** The period: `to` defaults to now, `from` to 12 calendar months before `to`. */
export function reportWindow(query: { from?: Date; to?: Date }, now: Date): ReportWindow {
  const to = query.to ?? now;
  let from = query.from;
  if (!from) {
    from = new Date(to.getTime());
    from.setUTCFullYear(from.getUTCFullYear() - 1);
  }
  return { from, to };
}

export interface DeadlineEntry {
  id: string;
  type: RequestType;
  regulation: DataSubjectRequest['regulation'];
  status: RequestStatus;
  receivedAt: string;
  dueAt: string;
  daysLeft: number;
}

export interface CcpaFigures {
  received: number;
  /** Completed with everything asked done. */
  compliedInWhole: number;
  /** Completed with part of it refused (a rectification item the service may not change, say). */
  compliedInPart: number;
  denied: number;
  /** Why requests were denied (declined), most frequent first. */
  denialReasons: { reason: string; count: number }[];
  /** Received in the period and not answered yet (open, failed) or withdrawn (cancelled). */
  pending: number;
  cancelled: number;
}

export interface RequestFigures {
  received: number;
  byStatus: Record<RequestStatus, number>;
  byType: Record<RequestType, number>;
  /** Each type's requests by status. */
  byTypeAndStatus: Record<RequestType, Record<RequestStatus, number>>;
  byRegulation: Record<(typeof REGULATIONS)[number], number>;
  /** Open requests past their due date, whenever received. */
  overdue: { count: number; requests: DeadlineEntry[] };
  /** Open requests due within DUE_SOON_DAYS, whenever received. */
  dueSoon: { count: number; requests: DeadlineEntry[] };
  /** Requests received in the period and completed: days from receipt to completion. */
  completion: { completed: number; medianDays: number | null; meanDays: number | null };
  /** CCPA metrics (Cal. Code Regs. tit. 11 § 7102) per request type, for CCPA requests received in the period. */
  ccpa: Record<RequestType, CcpaFigures>;
}

/** Folds requests received in the period, and the open ones, into the report's request figures. */
export class RequestTally {
  private readonly byStatus = zeroes(REQUEST_STATUSES);
  private readonly byType = zeroes(REQUEST_TYPES);
  private readonly byTypeAndStatus = Object.fromEntries(
    REQUEST_TYPES.map((type) => [type, zeroes(REQUEST_STATUSES)]),
  ) as Record<RequestType, Record<RequestStatus, number>>;
  private readonly byRegulation = zeroes(REGULATIONS);
  private readonly days: number[] = [];
  private readonly ccpa = Object.fromEntries(
    REQUEST_TYPES.map((type) => [type, { ...emptyCcpa(), reasons: new Map<string, number>() }]),
  ) as Record<RequestType, CcpaFigures & { reasons: Map<string, number> }>;
  private received = 0;
  private readonly overdue: DeadlineEntry[] = [];
  private readonly dueSoon: DeadlineEntry[] = [];
  private overdueCount = 0;
  private dueSoonCount = 0;

  constructor(private readonly now: Date) {}

  /** A request received in the period. */
  addReceived(request: DataSubjectRequest): void {
    this.received++;
    this.byStatus[request.status]++;
    this.byType[request.type]++;
    this.byTypeAndStatus[request.type][request.status]++;
    this.byRegulation[request.regulation]++;
    const completedAt = completionOf(request);
    if (request.status === 'completed' && completedAt) {
      this.days.push((Date.parse(completedAt) - Date.parse(request.receivedAt)) / DAY_MS);
    }
    if (request.regulation === 'CCPA') this.addCcpa(request);
  }

  /** An open request, whenever it was received: is it overdue or due soon? */
  addOpen(request: DataSubjectRequest): void {
    if (!OPEN_STATUSES.includes(request.status)) return;
    const due = Date.parse(request.dueAt);
    const now = this.now.getTime();
    const entry = (): DeadlineEntry => ({
      id: request.id,
      type: request.type,
      regulation: request.regulation,
      status: request.status,
      receivedAt: request.receivedAt,
      dueAt: request.dueAt,
      daysLeft: daysLeft(new Date(request.dueAt), this.now),
    });
    if (due < now) {
      this.overdueCount++;
      if (this.overdue.length < LISTED_REQUESTS) this.overdue.push(entry());
    } else if (due < now + DUE_SOON_DAYS * DAY_MS) {
      this.dueSoonCount++;
      if (this.dueSoon.length < LISTED_REQUESTS) this.dueSoon.push(entry());
    }
  }

  figures(): RequestFigures {
    const byDue = (a: DeadlineEntry, b: DeadlineEntry) => a.dueAt.localeCompare(b.dueAt);
    return {
      received: this.received,
      byStatus: { ...this.byStatus },
      byType: { ...this.byType },
      byTypeAndStatus: Object.fromEntries(
        REQUEST_TYPES.map((type) => [type, { ...this.byTypeAndStatus[type] }]),
      ) as Record<RequestType, Record<RequestStatus, number>>,
      byRegulation: { ...this.byRegulation },
      overdue: { count: this.overdueCount, requests: [...this.overdue].sort(byDue) },
      dueSoon: { count: this.dueSoonCount, requests: [...this.dueSoon].sort(byDue) },
      completion: {
        completed: this.days.length,
        medianDays: roundDays(median(this.days)),
        meanDays: roundDays(mean(this.days)),
      },
      ccpa: Object.fromEntries(
        REQUEST_TYPES.map((type) => {
          const { reasons, ...figures } = this.ccpa[type];
          const denialReasons = [...reasons.entries()]
            .map(([reason, count]) => ({ reason, count }))
            .sort((a, b) => b.count - a.count || a.reason.localeCompare(b.reason));
          return [type, { ...figures, denialReasons }];
        }),
      ) as Record<RequestType, CcpaFigures>,
    };
  }

  private addCcpa(request: DataSubjectRequest): void {
    const figures = this.ccpa[request.type];
    figures.received++;
    switch (request.status) {
      case 'completed':
        if (isPartial(request)) figures.compliedInPart++;
        else figures.compliedInWhole++;
        break;
      case 'declined': {
        figures.denied++;
        const reason = declineReason(request);
        figures.reasons.set(reason, (figures.reasons.get(reason) ?? 0) + 1);
        break;
      }
      case 'cancelled':
        figures.cancelled++;
        break;
      default:
        figures.pending++;
    }
  }
}

/** When the request completed: its last transition to `completed`. */
export function completionOf(request: Pick<DataSubjectRequest, 'history'>): string | undefined {
  return [...request.history].reverse().find((entry) => entry.to === 'completed')?.at;
}

/** A completed request of which part was refused: a rectification with an item not applied. */
export function isPartial(request: Pick<DataSubjectRequest, 'type' | 'result'>): boolean {
  if (request.type !== 'rectify') return false;
  const items = (request.result as { rectifications?: { outcome?: string }[] } | undefined)?.rectifications;
  return (items ?? []).some((item) => item.outcome !== 'applied');
}

/** The reason given when the request was declined (trimmed, as the admin wrote it). */
export function declineReason(request: Pick<DataSubjectRequest, 'history' | 'decision'>): string {
  const declined = [...request.history].reverse().find((entry) => entry.to === 'declined');
  return (declined?.reason ?? request.decision?.reason ?? '').trim() || '(no reason given)';
}

export function median(values: readonly number[]): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

export function mean(values: readonly number[]): number | null {
  if (values.length === 0) return null;
  return values.reduce((sum, value) => sum + value, 0) / values.length;
}

/** Days to one decimal, as the CSV gives them. */
const roundDays = (days: number | null) => (days === null ? null : Math.round(days * 10) / 10);

export interface PurgeForecast {
  /** Record versions by what the purge will do to them. */
  records: { delete: number; anonymise: number; purgeDeleted: number };
  /** Anonymised alerts reaching their 2 years. */
  anonymisedAlerts: number;
  /** Access and export packages reaching their 30 days. */
  packages: number;
  /** Invalid events set aside, reaching their 30 days. */
  poisonedEvents: number;
  total: number;
}

/**
 * Folds expiry index keys (`${yyyymmdd}_${kind}_...`, expiryIndex.ts) into a forecast per horizon: what the
 * purges up to and including `today + days` will have acted on (entries already due and not yet purged
 * included). Entries of subjects held back (a restriction, an open request) are counted as due: the
 * forecast says what the rules make due, not what a hold then keeps.
 */
export class PurgeTally {
  private readonly forecasts: PurgeForecast[];
  private readonly lastDays: string[];

  constructor(today: string, horizons: readonly number[] = FORECAST_DAYS) {
    this.lastDays = horizons.map((days) => compactDay(addDays(today, days)));
    this.forecasts = horizons.map(() => emptyForecast());
  }

  add(rowKeys: readonly string[]): void {
    for (const rowKey of rowKeys) {
      const day = rowKey.slice(0, 8);
      const kind = rowKey.slice(9, 10);
      const action = kind === 'r' ? rowKey.slice(11, rowKey.indexOf('_', 11)) : undefined;
      this.lastDays.forEach((lastDay, i) => {
        if (day > lastDay) return;
        const forecast = this.forecasts[i]!;
        if (action === 'delete' || action === 'anonymise' || action === 'purgeDeleted') {
          forecast.records[action]++;
        } else if (kind === 'a') forecast.anonymisedAlerts++;
        else if (kind === 'p') forecast.packages++;
        else if (kind === 'e') forecast.poisonedEvents++;
        else return;
        forecast.total++;
      });
    }
  }

  figures(): PurgeForecast[] {
    return this.forecasts.map((forecast) => ({ ...forecast, records: { ...forecast.records } }));
  }
}

/** The last day (yyyy-mm-dd) the forecast looks at. */
export const forecastEnd = (today: string, days: number = Math.max(...FORECAST_DAYS)) => addDays(today, days);

function addDays(day: string, days: number): string {
  return new Date(Date.parse(`${day}T00:00:00Z`) + days * DAY_MS).toISOString().slice(0, 10);
}

const compactDay = (day: string) => day.replaceAll('-', '');

function emptyForecast(): PurgeForecast {
  return {
    records: { delete: 0, anonymise: 0, purgeDeleted: 0 },
    anonymisedAlerts: 0,
    packages: 0,
    poisonedEvents: 0,
    total: 0,
  };
}

function emptyCcpa(): CcpaFigures {
  return {
    received: 0,
    compliedInWhole: 0,
    compliedInPart: 0,
    denied: 0,
    denialReasons: [],
    pending: 0,
    cancelled: 0,
  };
}

function zeroes<K extends string>(keys: readonly K[]): Record<K, number> {
  return Object.fromEntries(keys.map((key) => [key, 0])) as Record<K, number>;
}

/** Records per category with their sum. */
export function recordFigures(byCategory: Record<RecordCategory, number>): {
  byCategory: Record<RecordCategory, number>;
  total: number;
} {
  const ordered = Object.fromEntries(RECORD_CATEGORIES.map((c) => [c, Math.max(0, byCategory[c] ?? 0)]));
  return {
    byCategory: ordered as Record<RecordCategory, number>,
    total: Object.values(ordered).reduce((sum, n) => sum + n, 0),
  };
}

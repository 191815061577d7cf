// Deadline watch (hourly timer `requestDeadlines`): flags every open request of every tenant `dueSoon` in
// its last 7 days and `overdue` once its due date has come, and audits each raised flag once.
import type { Actor } from '../audit/auditEvent';
import type { Clock } from '../clock';
import { everyItem } from '../paging';
import type { TenantDirectory, TenantScope } from '../residency/tenantDirectory';
import {
  type DataSubjectRequest,
  type DeadlineFlag,
  REQUEST_STATUSES,
  type RequestStatus,
} from './dataSubjectRequest';
import { isOpen } from './lifecycle';
import type { DataSubjectRequestService } from './requestService';
import { sweepWritableTenants } from '../residency/tenantSweep';

const DAY_MS = 24 * 60 * 60 * 1000;

/** How long before its due date a request counts as due soon. */
export const DUE_SOON_WINDOW_MS = 7 * DAY_MS;

/**
 * The flag a request due at `dueAt` carries at `now`: `dueSoon` while 0 < time left ≤ 7 days, `overdue`
 * from the due instant on (no time is left then), none while more than 7 days are left.
 */
export function deadlineFlag(dueAt: Date, now: Date): DeadlineFlag | undefined {
  const left = dueAt.getTime() - now.getTime();
  if (left <= 0) return 'overdue';
  if (left <= DUE_SOON_WINDOW_MS) return 'dueSoon';
  return undefined;
}

/** Every status but completed, declined and cancelled; one server-side filtered listing each. */
const OPEN_STATUSES: readonly RequestStatus[] = REQUEST_STATUSES.filter(isOpen);

const PAGE_SIZE = 200;

const DEADLINE_WATCH: Actor = { type: 'system', id: 'requestDeadlines' };

export interface DeadlineRun {
  tenants: number;
  /** Open requests looked at. */
  checked: number;
  /** Flag changes this run wrote. */
  dueSoon: number;
  overdue: number;
  cleared: number;
  /** Tenants that could not be checked; the others were checked regardless. */
  failures: { tenantId: string; reason: string }[];
}

export class RequestDeadlines {
  constructor(
    private readonly directory: TenantDirectory,
    private readonly requests: DataSubjectRequestService,
    private readonly clock: Clock,
  ) {}

  /** Checks every tenant against one instant, so a run is consistent however long it takes. */
  async run(correlationId: string): Promise<DeadlineRun> {
    const now = this.clock();
    const summary: DeadlineRun = { tenants: 0, checked: 0, dueSoon: 0, overdue: 0, cleared: 0, failures: [] };
    await sweepWritableTenants(this.directory, summary, (tenant) =>
      this.checkTenant(tenant, now, correlationId, summary),
    );
    return summary;
  }

  private async checkTenant(
    tenant: TenantScope,
    now: Date,
    correlationId: string,
    summary: DeadlineRun,
  ): Promise<void> {
    const flagOf = (request: Pick<DataSubjectRequest, 'dueAt'>) => deadlineFlag(new Date(request.dueAt), now);
    for (const status of OPEN_STATUSES) {
      const open = everyItem((page) => this.requests.list(tenant, { status }, page), PAGE_SIZE);
      for await (const request of open) {
        summary.checked++;
        // Most requests need no write; only those whose flag is out of date are re-read and written.
        if (flagOf(request) === request.deadline) continue;
        const flagged = await this.requests.flagDeadline(tenant, request.id, flagOf, {
          actor: DEADLINE_WATCH,
          correlationId,
        });
        if (flagged) summary[flagged.deadline ?? 'cleared']++;
      }
    }
  }
}

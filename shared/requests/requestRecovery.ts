// Timer `requestRecovery` (every 5 minutes): no request waits for someone to look at it. Side effects left on
// a request (an audit event, a work message) when the process died or storage faltered after its change are
// carried out; a request whose step stopped making progress (its message poisoned, lost, or its failure not
// recordable) is put back on `dsr-work`, and after STALL_LIMIT times it ends failed with a reason (SPEC §5).
import type { Actor } from '../audit/auditEvent';
import type { Clock } from '../clock';
import { DomainError } from '../errors';
import { everyItem } from '../paging';
import type { TenantDirectory, TenantScope } from '../residency/tenantDirectory';
import { QUEUES } from '../storage/names';
import type { WorkQueue } from '../storage/workQueue';
import type { DataSubjectRequest, RequestStatus } from './dataSubjectRequest';
import type { DataSubjectRequestService } from './requestService';
import { sweepWritableTenants } from '../residency/tenantSweep';

/** A step that has not changed its request for this long has stopped (a package of any size takes less). */
export const STALLED_AFTER_MS = 30 * 60 * 1000;
/** Resumptions before a stalled request ends failed. */
export const STALL_LIMIT = 3;

const WORKING: readonly RequestStatus[] = ['received', 'discovering', 'inProgress'];
const RECOVERY: Actor = { type: 'system', id: 'requestRecovery' };

export interface RecoveryRun {
  tenants: number;
  /** Working requests looked at (and any side effects left on them carried out). */
  checked: number;
  /** Requests whose step was put back on the queue. */
  resumed: number;
  /** Requests that stalled too often and ended failed. */
  failed: number;
  failures: { tenantId: string; reason: string }[];
}

/** The step a working request is waiting for. Pure. */
export const pendingStep = (status: RequestStatus): 'discover' | 'fulfil' =>
  status === 'inProgress' ? 'fulfil' : 'discover';

/** When a request last moved: its last transition, or its last resumption. Pure. */
const lastProgress = (request: DataSubjectRequest): number =>
  Math.max(
    Date.parse(request.history.at(-1)?.at ?? request.receivedAt),
    Date.parse(request.progress?.resumedAt ?? request.receivedAt),
  );

export class RequestRecovery {
  constructor(
    private readonly directory: TenantDirectory,
    private readonly requests: DataSubjectRequestService,
    private readonly workQueue: WorkQueue,
    private readonly clock: Clock,
  ) {}

  async run(): Promise<RecoveryRun> {
    const summary: RecoveryRun = { tenants: 0, checked: 0, resumed: 0, failed: 0, failures: [] };
    await sweepWritableTenants(this.directory, summary, (tenant) => this.recoverTenant(tenant, summary));
    return summary;
  }

  async recoverTenant(tenant: TenantScope, summary: RecoveryRun): Promise<void> {
    const now = this.clock().getTime();
    for (const status of WORKING) {
      for await (const listed of everyItem((page) => this.requests.list(tenant, { status }, page))) {
        // Loading a request carries out what its last change left to do (audit event, work message).
        const request = await this.requests.load(tenant, listed.id);
        summary.checked++;
        if (!WORKING.includes(request.status) || now - lastProgress(request) < STALLED_AFTER_MS) continue;
        await this.resume(tenant, request, summary);
      }
    }
  }

  private async resume(tenant: TenantScope, request: DataSubjectRequest, summary: RecoveryRun) {
    const stalls = (request.progress?.stalls ?? 0) + 1;
    const step = pendingStep(request.status);
    if (stalls > STALL_LIMIT) {
      try {
        await this.requests.change(tenant, request.id, 'fail', {
          actor: RECOVERY,
          correlationId: request.id,
          step,
          code: 'Stalled',
          reason: `The ${step === 'discover' ? 'discovery' : 'fulfilment'} stopped making progress ${STALL_LIMIT} times. Retry the request.`,
        });
        summary.failed++;
      } catch (error) {
        if (!(error instanceof DomainError && error.code === 'InvalidState')) throw error;
      }
      return;
    }
    await this.requests.saveProgress(tenant, request.id, { stalls, resumedAt: this.clock().toISOString() });
    // The consumer is idempotent: if the step was only slow, the second delivery finds it done.
    await this.workQueue.send(QUEUES.dsrWork, { tenantId: tenant.tenantId, requestId: request.id, step });
    summary.resumed++;
  }
}

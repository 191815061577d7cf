// Timer `alertRequestRecovery` (every 5 minutes), as requestRecovery does for data subject requests: side
// effects left on an alert data request (its audit event, its work message) when the process died or
// storage faltered after its change are carried out, and a request whose work stopped making progress (its
// message poisoned or lost) is put back on `alert-data-work`; after STALL_LIMIT times it ends failed.
import type { Actor } from '../audit/auditEvent';
import type { Clock } from '../clock';
import { DomainError } from '../errors';
import { everyItem } from '../paging';
import type { TenantDirectory, TenantScope } from '../residency/tenantDirectory';
import { QUEUES } from '../storage/names';
import type { WorkQueue } from '../storage/workQueue';
import { type AlertDataRequest, isStalled, STALL_LIMIT, WORKING_STATUSES } from './alertDataRequest';
import type { AlertRequestService } from './alertRequestService';
import { sweepWritableTenants } from '../residency/tenantSweep';

const RECOVERY: Actor = { type: 'system', id: 'alertRequestRecovery' };

export interface AlertRecoveryRun {
  tenants: number;
  /** Working requests looked at (and any side effects left on them carried out). */
  checked: number;
  /** Requests put back on the queue. */
  resumed: number;
  /** Requests that stalled too often and ended failed. */
  failed: number;
  failures: { tenantId: string; reason: string }[];
}

export class AlertRequestRecovery {
  constructor(
    private readonly directory: TenantDirectory,
    private readonly requests: AlertRequestService,
    private readonly workQueue: WorkQueue,
    private readonly clock: Clock,
  ) {}

  async run(): Promise<AlertRecoveryRun> {
    const summary: AlertRecoveryRun = { tenants: 0, checked: 0, resumed: 0, failed: 0, failures: [] };
    await sweepWritableTenants(this.directory, summary, (tenant) => this.recoverTenant(tenant, summary));
    return summary;
  }

  async recoverTenant(tenant: TenantScope, summary: AlertRecoveryRun): Promise<void> {
    for (const status of WORKING_STATUSES) {
      for await (const listed of everyItem((page) => this.requests.list(tenant, { status }, page))) {
        // Loading a request carries out what its last change left to do (audit event, work message).
        const request = await this.requests.load(tenant, listed.id);
        summary.checked++;
        if (isStalled(request, this.clock())) await this.resume(tenant, request, summary);
      }
    }
  }

  private async resume(tenant: TenantScope, request: AlertDataRequest, summary: AlertRecoveryRun) {
    const stalls = (request.progress?.stalls ?? 0) + 1;
    if (stalls > STALL_LIMIT) {
      try {
        await this.requests.change(
          tenant,
          request.id,
          'fail',
          { actor: RECOVERY, correlationId: request.id },
          {
            failure: {
              code: 'Stalled',
              reason: `The work stopped making progress ${STALL_LIMIT} times. Send the request again.`,
            },
          },
        );
        summary.failed++;
      } catch (error) {
        if (!(error instanceof DomainError && error.code === 'InvalidState')) throw error;
      }
      return;
    }
    await this.requests.saveProgress(tenant, request.id, { stalls, resumedAt: this.clock().toISOString() });
    // The consumer is idempotent: if the work was only slow, the second delivery finds it done.
    await this.workQueue.send(QUEUES.alertDataWork, { tenantId: tenant.tenantId, requestId: request.id });
    summary.resumed++;
  }
}

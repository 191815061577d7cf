// A timer's pass over every tenant that may take writes: a tenant being purged takes no more (its data goes
// with it), and a tenant on the move takes none until it has arrived (SPEC §8), so the next pass does what
// this one skips. One tenant's failure (its geography unreachable, say) never stops the others: it is noted.
import type { TenantDirectory, TenantScope } from './tenantDirectory';

export interface SweepSummary {
  tenants: number;
  failures: { tenantId: string; reason: string }[];
}

export async function sweepWritableTenants(
  directory: TenantDirectory,
  summary: SweepSummary,
  visit: (tenant: TenantScope) => Promise<void>,
): Promise<void> {
  for await (const entry of directory.listTenants()) {
    if (entry.status === 'purging' || entry.migration) continue;
    summary.tenants++;
    try {
      await visit(directory.scopeOf(entry));
    } catch (error) {
      summary.failures.push({
        tenantId: entry.tenantId,
        reason: error instanceof Error ? error.message : String(error),
      });
    }
  }
}

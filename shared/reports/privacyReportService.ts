// GET /api/tenants/{tid}/privacy-report (SPEC §9): gathers what the figures are made of, each from the
// cheapest source that holds it, and has privacyReport.ts compute them. What each costs:
// - requests received in the period: one key range of the tenant's request partition (ids sort by receipt);
//   open requests (overdue, due soon): one query by status. Both grow with requests, never with records.
// - records per category: the counters (recordCounts.ts), at most 16 rows whatever the number of records.
// - purges due in 7 and 30 days: the keys of the expiry index's entries due by then (no entry bodies), in
//   proportion to what falls due within 30 days, not to what is stored.
// - restricted subjects: the restrictions partition's keys; geography and migration: the directory entry
//   and the latest migration job.
import type { Clock } from '../clock';
import type { MigrationStore } from '../migration/migrationStore';
import type { RecordCounts } from '../records/recordCounts';
import type { RestrictionStore } from '../records/restrictions';
import type { TenantScope } from '../residency/tenantDirectory';
import type { RequestRepository } from '../requests/requestRepository';
import type { ExpiryIndex } from '../retention/expiryIndex';
import {
  FORECAST_DAYS,
  forecastEnd,
  OPEN_STATUSES,
  type PurgeForecast,
  PurgeTally,
  recordFigures,
  type RequestFigures,
  RequestTally,
  reportWindow,
} from './privacyReport';

export interface PrivacyReport {
  tenantId: string;
  generatedAt: string;
  period: { from: string; to: string };
  requests: Omit<RequestFigures, 'ccpa'>;
  ccpa: RequestFigures['ccpa'];
  records: ReturnType<typeof recordFigures> & { source: 'counters' };
  purgeForecast: { next7Days: PurgeForecast; next30Days: PurgeForecast };
  restrictedSubjects: number;
  residency: {
    geography: string;
    countryCode: string;
    migration: {
      migrationId: string;
      status: string;
      from: string;
      to: string;
      createdAt: string;
      completedAt?: string;
    } | null;
  };
}

export class PrivacyReportService {
  constructor(
    private readonly requests: RequestRepository,
    private readonly counts: RecordCounts,
    private readonly expiry: ExpiryIndex,
    private readonly restrictions: RestrictionStore,
    private readonly migrations: MigrationStore,
    private readonly clock: Clock,
  ) {}

  async report(tenant: TenantScope, query: { from?: Date; to?: Date }): Promise<PrivacyReport> {
    const now = this.clock();
    const window = reportWindow(query, now);
    const today = now.toISOString().slice(0, 10);
    const [requests, byCategory, forecast, restricted, migration] = await Promise.all([
      this.requestFigures(tenant, window, now),
      this.counts.totals(tenant),
      this.purgeForecast(tenant, today),
      this.restrictions.restrictedSubjects(tenant),
      this.migrations.latest(tenant.tenantId),
    ]);
    const { ccpa, ...requestFigures } = requests;
    return {
      tenantId: tenant.tenantId,
      generatedAt: now.toISOString(),
      period: { from: window.from.toISOString(), to: window.to.toISOString() },
      requests: requestFigures,
      ccpa,
      records: { ...recordFigures(byCategory), source: 'counters' },
      purgeForecast: { next7Days: forecast[0]!, next30Days: forecast[1]! },
      restrictedSubjects: restricted.size,
      residency: {
        geography: tenant.geography,
        countryCode: tenant.entry.countryCode,
        migration: migration
          ? {
              migrationId: migration.migrationId,
              status: migration.status,
              from: migration.from,
              to: migration.to,
              createdAt: migration.createdAt,
              ...(migration.completedAt ? { completedAt: migration.completedAt } : {}),
            }
          : null,
      },
    };
  }

  private async requestFigures(
    tenant: TenantScope,
    window: { from: Date; to: Date },
    now: Date,
  ): Promise<RequestFigures> {
    const tally = new RequestTally(now);
    for await (const page of this.requests.receivedBetween(tenant, window.from, window.to)) {
      for (const request of page) tally.addReceived(request);
    }
    for await (const page of this.requests.withStatus(tenant, OPEN_STATUSES)) {
      for (const request of page) tally.addOpen(request);
    }
    return tally.figures();
  }

  private async purgeForecast(tenant: TenantScope, today: string): Promise<PurgeForecast[]> {
    const tally = new PurgeTally(today, FORECAST_DAYS);
    for await (const keys of this.expiry.dueKeys(tenant, forecastEnd(today))) tally.add(keys);
    return tally.figures();
  }
}

// Restriction of processing (GDPR Art. 18): a restricted subject is left out of reports and operator reads.
// Table `restrictions` in the tenant's geography: PartitionKey tenant id, RowKey the subject key.
import { odata, RestError, type TableClient } from '@azure/data-tables';

import { decodeContinuation, encodeContinuation, type Page, type PageRequest } from '../paging';
import type { TenantScope } from '../residency/tenantDirectory';
import { TABLES } from '../storage/names';
import type { DataSubject } from './dataSubjectRequest';

export interface Restriction {
  subjectKey: string;
  subject: DataSubject;
  requestId: string;
  restrictedAt: string;
}

interface RestrictionEntity {
  partitionKey: string;
  rowKey: string;
  subject: string;
  requestId: string;
  restrictedAt: string;
}

const isContinuation = (v: unknown): v is { t: string } =>
  typeof v === 'object' && v !== null && typeof (v as { t?: unknown }).t === 'string';

export class RestrictionStore {
  private table(tenant: TenantScope): Promise<TableClient> {
    return tenant.account.table(TABLES.restrictions);
  }

  async restrict(tenant: TenantScope, restriction: Restriction): Promise<void> {
    const table = await this.table(tenant);
    await table.upsertEntity<RestrictionEntity>(
      {
        partitionKey: tenant.tenantId,
        rowKey: restriction.subjectKey,
        subject: JSON.stringify(restriction.subject),
        requestId: restriction.requestId,
        restrictedAt: restriction.restrictedAt,
      },
      'Replace',
    );
  }

  async lift(tenant: TenantScope, subjectKey: string): Promise<void> {
    const table = await this.table(tenant);
    try {
      await table.deleteEntity(tenant.tenantId, subjectKey);
    } catch (error) {
      if (!(error instanceof RestError && error.statusCode === 404)) throw error;
    }
  }

  async isRestricted(tenant: TenantScope, subjectKey: string): Promise<boolean> {
    const table = await this.table(tenant);
    try {
      await table.getEntity(tenant.tenantId, subjectKey);
      return true;
    } catch (error) {
      if (error instanceof RestError && error.statusCode === 404) return false;
      throw error;
    }
  }

  async list(tenant: TenantScope, page: PageRequest): Promise<Page<Restriction>> {
    const continuation = decodeContinuation(page.continuation, isContinuation);
    const table = await this.table(tenant);
    const result = await table
      .listEntities<RestrictionEntity>({
        queryOptions: { filter: odata`PartitionKey eq ${tenant.tenantId}` },
      })
      .byPage({ maxPageSize: page.top, ...(continuation ? { continuationToken: continuation.t } : {}) })
      .next();
    if (result.done) return { items: [] };
    const next = (result.value as { continuationToken?: string }).continuationToken;
    return {
      items: result.value.map((row) => ({
        subjectKey: row.rowKey,
        subject: JSON.parse(row.subject) as DataSubject,
        requestId: row.requestId,
        restrictedAt: row.restrictedAt,
      })),
      ...(next ? { continuation: encodeContinuation({ t: next }) } : {}),
    };
  }
}

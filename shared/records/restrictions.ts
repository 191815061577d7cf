// Restriction of processing (GDPR Art. 18, SPEC §5): a restricted subject's records are only stored — kept
// as they are (the retention purge skips them, as under a hold) and left out of reports, operator reads and
// alert extractions. Table `restrictions` in the tenant's geography: PartitionKey tenant id, RowKey the
// subject key (so a restriction made by any of the subject's names is the subject's).
import { odata, type TableClient } from '@azure/data-tables';

import {
  keysetPage,
  listScope,
  type Page,
  type PageRequest,
  readContinuation,
  rowKeyPosition,
} from '../paging';
import type { TenantScope } from '../residency/tenantDirectory';
import { TABLES } from '../storage/names';
import type { DataSubject } from '../vocabulary/dataSubject';
import { orAbsent } from '../storage/absent';

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

/** A list resumes after the last subject key it handed out, inside the tenant's own partition. */
const listPosition = rowKeyPosition();

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
    await orAbsent(table.deleteEntity(tenant.tenantId, subjectKey));
  }

  async find(tenant: TenantScope, subjectKey: string): Promise<Restriction | undefined> {
    const table = await this.table(tenant);
    const row = await orAbsent(table.getEntity<RestrictionEntity>(tenant.tenantId, subjectKey));
    return row && toRestriction(row);
  }

  /** Every restricted subject of the tenant: what a purge, a report or an operator read must leave alone. */
  async restrictedSubjects(tenant: TenantScope): Promise<Set<string>> {
    const table = await this.table(tenant);
    const keys = new Set<string>();
    for await (const row of table.listEntities({
      queryOptions: { filter: odata`PartitionKey eq ${tenant.tenantId}`, select: ['RowKey'] },
    })) {
      keys.add(row.rowKey!);
    }
    return keys;
  }

  /** An alias's own subject merged into an object subject: its restriction becomes the object subject's. */
  async transfer(tenant: TenantScope, from: string, to: string): Promise<void> {
    const restriction = await this.find(tenant, from);
    if (restriction) await this.restrict(tenant, { ...restriction, subjectKey: to });
    await this.lift(tenant, from);
  }

  async list(tenant: TenantScope, page: PageRequest): Promise<Page<Restriction>> {
    const scope = listScope(TABLES.restrictions, tenant.tenantId);
    const position = readContinuation(page.continuation, scope, listPosition);
    const conditions = [odata`PartitionKey eq ${tenant.tenantId}`];
    if (position) conditions.push(odata`RowKey gt ${position.after}`);
    const table = await this.table(tenant);
    const top = Math.max(1, page.top);
    const pages = table
      .listEntities<RestrictionEntity>({ queryOptions: { filter: conditions.join(' and ') } })
      .byPage({ maxPageSize: top + 1 });
    const found = await keysetPage(pages, top, scope, (row) => row.rowKey);
    return { ...found, items: found.items.map(toRestriction) };
  }
}

const toRestriction = (row: RestrictionEntity): Restriction => ({
  subjectKey: row.rowKey,
  subject: JSON.parse(row.subject) as DataSubject,
  requestId: row.requestId,
  restrictedAt: row.restrictedAt,
});

// Table storage of alert data requests in the tenant's geography (table `alertDataRequests`): PartitionKey
// the tenant id, RowKey the request id (newest first). Each row holds the request and the side effects of its
// last change not yet carried out (outbox.ts); replaces are ETag-guarded.
import { odata, RestError, type TableClient, type TableEntityResult } from '@azure/data-tables';

import { DomainError, notFound } from '../errors';
import {
  keysetPage,
  listScope,
  type Page,
  type PageRequest,
  readContinuation,
  rowKeyPosition,
} from '../paging';
import type { OutboxEffect } from '../requests/outbox';
import { ConcurrentChangeError, REQUEST_ID_PATTERN } from '../requests/requestRepository';
import type { TenantScope } from '../residency/tenantDirectory';
import { orAbsent } from '../storage/absent';
import { TABLES } from '../storage/names';
import type { AlertDataRequest, AlertRequestStatus } from './alertDataRequest';

/** A request as stored, with its ETag and its side effects not yet carried out. */
export interface StoredAlertRequest {
  request: AlertDataRequest;
  outbox: OutboxEffect[];
  etag: string;
}

interface AlertRequestEntity {
  partitionKey: string;
  rowKey: string;
  action: string;
  status: string;
  /** The whole request as JSON; the columns above exist for server-side filters. */
  document: string;
  outbox: string;
}

const listPosition = rowKeyPosition(REQUEST_ID_PATTERN);

export class AlertRequestStore {
  private table(tenant: TenantScope): Promise<TableClient> {
    return tenant.account.table(TABLES.alertDataRequests);
  }

  /** Inserts a new request; an id that exists already returns the stored one (a retried create). */
  async insert(
    tenant: TenantScope,
    request: AlertDataRequest,
    outbox: OutboxEffect[],
  ): Promise<StoredAlertRequest> {
    const table = await this.table(tenant);
    try {
      const { etag } = await table.createEntity(toEntity(tenant, request, outbox));
      return { request, outbox, etag: etag ?? '' };
    } catch (error) {
      if (error instanceof RestError && error.statusCode === 409) return this.get(tenant, request.id);
      throw error;
    }
  }

  async find(tenant: TenantScope, id: string): Promise<StoredAlertRequest | undefined> {
    if (!REQUEST_ID_PATTERN.test(id)) return undefined;
    const table = await this.table(tenant);
    const entity = await orAbsent(table.getEntity<AlertRequestEntity>(tenant.tenantId, id));
    return entity && fromEntity(entity);
  }

  async get(tenant: TenantScope, id: string): Promise<StoredAlertRequest> {
    const stored = await this.find(tenant, id);
    if (!stored) throw notFound(`Alert data request ${id}`);
    return stored;
  }

  /** Replaces a request if it has not changed since it was read; ConcurrentChangeError otherwise. */
  async replace(tenant: TenantScope, stored: StoredAlertRequest): Promise<StoredAlertRequest> {
    const table = await this.table(tenant);
    try {
      const { etag } = await table.updateEntity(toEntity(tenant, stored.request, stored.outbox), 'Replace', {
        etag: stored.etag,
      });
      return { ...stored, etag: etag ?? '' };
    } catch (error) {
      if (error instanceof RestError && error.statusCode === 412) throw new ConcurrentChangeError();
      throw error;
    }
  }

  async list(
    tenant: TenantScope,
    filter: { status?: AlertRequestStatus },
    page: PageRequest,
  ): Promise<Page<AlertDataRequest>> {
    const scope = listScope(TABLES.alertDataRequests, tenant.tenantId);
    const position = readContinuation(page.continuation, scope, listPosition);
    const conditions = [odata`PartitionKey eq ${tenant.tenantId}`];
    if (position) conditions.push(odata`RowKey gt ${position.after}`);
    if (filter.status) conditions.push(odata`status eq ${filter.status}`);
    const table = await this.table(tenant);
    const top = Math.max(1, page.top);
    const pages = table
      .listEntities<AlertRequestEntity>({ queryOptions: { filter: conditions.join(' and ') } })
      .byPage({ maxPageSize: top + 1 });
    const found = await keysetPage(pages, top, scope, (entity) => entity.rowKey);
    return { ...found, items: found.items.map((entity) => fromEntity(entity).request) };
  }
}

function toEntity(
  tenant: TenantScope,
  request: AlertDataRequest,
  outbox: OutboxEffect[],
): AlertRequestEntity {
  if (request.tenantId !== tenant.tenantId) throw new DomainError('Internal', 'A request left its tenant.');
  return {
    partitionKey: tenant.tenantId,
    rowKey: request.id,
    action: request.action,
    status: request.status,
    document: JSON.stringify(request),
    outbox: JSON.stringify(outbox),
  };
}

function fromEntity(entity: TableEntityResult<AlertRequestEntity>): StoredAlertRequest {
  return {
    request: JSON.parse(entity.document) as AlertDataRequest,
    outbox: JSON.parse(entity.outbox || '[]') as OutboxEffect[],
    etag: entity.etag,
  };
}

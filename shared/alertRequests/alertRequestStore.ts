// Table storage of alert data requests in the tenant's geography (table `alertDataRequests`): PartitionKey
// the tenant id, RowKey the request id (newest first). Each row holds the request and the side effects of its
// last change not yet carried out (outbox.ts); replaces are ETag-guarded (storage/documentTable.ts).
import type { Page, PageRequest } from '../paging';
import type { OutboxEffect } from '../requests/outbox';
import { REQUEST_ID_PATTERN } from '../requests/requestRepository';
import type { TenantScope } from '../residency/tenantDirectory';
import { DocumentTable, type StoredDocument } from '../storage/documentTable';
import { TABLES } from '../storage/names';
import type { AlertDataRequest, AlertRequestStatus } from './alertDataRequest';

/** A request as stored, with its ETag and its side effects not yet carried out. */
export type StoredAlertRequest = StoredDocument<AlertDataRequest, OutboxEffect>;

export class AlertRequestStore {
  private readonly documents = new DocumentTable<AlertDataRequest, OutboxEffect>({
    table: TABLES.alertDataRequests,
    idPattern: REQUEST_ID_PATTERN,
    columns: (request) => ({ action: request.action, status: request.status }),
    name: 'Alert data request',
  });

  /** Inserts a new request; an id that exists already returns the stored one (a retried create). */
  insert(
    tenant: TenantScope,
    request: AlertDataRequest,
    outbox: OutboxEffect[],
  ): Promise<StoredAlertRequest> {
    return this.documents.insert(tenant, request, outbox);
  }

  find(tenant: TenantScope, id: string): Promise<StoredAlertRequest | undefined> {
    return this.documents.find(tenant, id);
  }

  get(tenant: TenantScope, id: string): Promise<StoredAlertRequest> {
    return this.documents.get(tenant, id);
  }

  /** Replaces a request if it has not changed since it was read; ConcurrentChangeError otherwise. */
  replace(tenant: TenantScope, stored: StoredAlertRequest): Promise<StoredAlertRequest> {
    return this.documents.replace(tenant, stored);
  }
  /** Reads, changes and replaces a request under its ETag, again on a concurrent change (DocumentTable.update). */
  update(
    tenant: TenantScope,
    id: string,
    next: (
      stored: StoredAlertRequest,
    ) => Promise<StoredAlertRequest | undefined> | StoredAlertRequest | undefined,
  ): Promise<StoredAlertRequest | undefined> {
    return this.documents.update(tenant, id, next);
  }

  list(
    tenant: TenantScope,
    filter: { status?: AlertRequestStatus },
    page: PageRequest,
  ): Promise<Page<AlertDataRequest>> {
    return this.documents.list(tenant, { status: filter.status }, page);
  }
}

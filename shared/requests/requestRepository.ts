// Table storage of data subject requests in the tenant's geography: PartitionKey = tenant id, RowKey =
// request id. Ids sort newest first, so a listing is in reverse order of receipt (storage/documentTable.ts).
import { randomBytes } from 'node:crypto';

import { odata } from '@azure/data-tables';

import type { Page, PageRequest } from '../paging';
import type { TenantScope } from '../residency/tenantDirectory';
import { DocumentTable, type StoredDocument } from '../storage/documentTable';
import { TABLES } from '../storage/names';
import type { DataSubjectRequest, RequestStatus, RequestType } from './dataSubjectRequest';
import type { OutboxEffect } from './outbox';

/** Largest millisecond time the id can invert (year 2286); ids are 11 base-36 digits plus randomness. */
const MAX_TIME = 9_999_999_999_999;

export function newRequestId(now: Date): string {
  const inverted = (MAX_TIME - now.getTime()).toString(36).padStart(9, '0');
  return `${inverted}${randomBytes(8).toString('hex')}`;
}

export const REQUEST_ID_PATTERN = /^[0-9a-z]{9}[0-9a-f]{16}$/;

/** A request as stored, with its ETag and its side effects not yet carried out. */
export type StoredRequest = StoredDocument<DataSubjectRequest, OutboxEffect>;

export interface RequestFilter {
  status?: RequestStatus;
  type?: RequestType;
}

/** The id prefix of a request received at `time`: ids sort newest first by it (newRequestId). */
const idPrefixAt = (time: Date) =>
  (MAX_TIME - Math.min(Math.max(time.getTime(), 0), MAX_TIME)).toString(36).padStart(9, '0');

export class RequestRepository {
  private readonly documents = new DocumentTable<DataSubjectRequest, OutboxEffect>({
    table: TABLES.requests,
    idPattern: REQUEST_ID_PATTERN,
    columns: (request) => ({ type: request.type, status: request.status }),
    name: 'Request',
  });

  /** Inserts a new request; an id that exists already returns the stored one (a retried create). */
  insert(tenant: TenantScope, request: DataSubjectRequest, outbox: OutboxEffect[]): Promise<StoredRequest> {
    return this.documents.insert(tenant, request, outbox);
  }

  find(tenant: TenantScope, id: string): Promise<StoredRequest | undefined> {
    return this.documents.find(tenant, id);
  }

  get(tenant: TenantScope, id: string): Promise<StoredRequest> {
    return this.documents.get(tenant, id);
  }

  /** Replaces a request if it has not changed since it was read; 409 Conflict otherwise. */
  replace(tenant: TenantScope, stored: StoredRequest): Promise<StoredRequest> {
    return this.documents.replace(tenant, stored);
  }
  /** Reads, changes and replaces a request under its ETag, again on a concurrent change (DocumentTable.update). */
  update(
    tenant: TenantScope,
    id: string,
    next: (stored: StoredRequest) => Promise<StoredRequest | undefined> | StoredRequest | undefined,
  ): Promise<StoredRequest | undefined> {
    return this.documents.update(tenant, id, next);
  }

  /** Requests received in [from, to] (their ids say when), newest first, a page at a time. */
  async *receivedBetween(tenant: TenantScope, from: Date, to: Date): AsyncGenerator<DataSubjectRequest[]> {
    const range = odata`RowKey ge ${idPrefixAt(to)} and RowKey lt ${`${idPrefixAt(from)}~`}`;
    for await (const page of this.documents.pages(tenant, range)) {
      const received = page.filter(
        (r) => Date.parse(r.receivedAt) >= from.getTime() && Date.parse(r.receivedAt) <= to.getTime(),
      );
      if (received.length > 0) yield received;
    }
  }

  /** Every request in one of `statuses`, whenever received (the open ones are few). */
  async *withStatus(
    tenant: TenantScope,
    statuses: readonly RequestStatus[],
  ): AsyncGenerator<DataSubjectRequest[]> {
    if (statuses.length === 0) return;
    yield* this.documents.pages(tenant, statuses.map((status) => odata`status eq ${status}`).join(' or '));
  }

  list(tenant: TenantScope, filter: RequestFilter, page: PageRequest): Promise<Page<DataSubjectRequest>> {
    return this.documents.list(tenant, { status: filter.status, type: filter.type }, page);
  }
}

// Table storage of data subject requests in the tenant's geography: PartitionKey = tenant id, RowKey =
// request id. Ids sort newest first, so a listing is in reverse order of receipt.
import { randomBytes } from 'node:crypto';

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
import type { TenantScope } from '../residency/tenantDirectory';
import { TABLES } from '../storage/names';
import type { DataSubjectRequest, RequestStatus, RequestType } from './dataSubjectRequest';
import type { OutboxEffect } from './outbox';
import { orAbsent } from '../storage/absent';

/** Largest millisecond time the id can invert (year 2286); ids are 11 base-36 digits plus randomness. */
const MAX_TIME = 9_999_999_999_999;

export function newRequestId(now: Date): string {
  const inverted = (MAX_TIME - now.getTime()).toString(36).padStart(9, '0');
  return `${inverted}${randomBytes(8).toString('hex')}`;
}

export const REQUEST_ID_PATTERN = /^[0-9a-z]{9}[0-9a-f]{16}$/;

/** A request as stored, with its ETag and its side effects not yet carried out. */
export interface StoredRequest {
  request: DataSubjectRequest;
  outbox: OutboxEffect[];
  etag: string;
}

interface RequestEntity {
  partitionKey: string;
  rowKey: string;
  type: string;
  status: string;
  /** The whole request as JSON; the columns above exist for server-side filters. */
  document: string;
  outbox: string;
}

export interface RequestFilter {
  status?: RequestStatus;
  type?: RequestType;
}

/** A list resumes after the last request id it handed out, inside the tenant's own partition. */
const listPosition = rowKeyPosition(REQUEST_ID_PATTERN);

export class RequestRepository {
  private table(tenant: TenantScope): Promise<TableClient> {
    return tenant.account.table(TABLES.requests);
  }

  /** Inserts a new request; an id that exists already returns the stored one (a retried create). */
  async insert(
    tenant: TenantScope,
    request: DataSubjectRequest,
    outbox: OutboxEffect[],
  ): Promise<StoredRequest> {
    const table = await this.table(tenant);
    try {
      const { etag } = await table.createEntity(toEntity(tenant, request, outbox));
      return { request, outbox, etag: etag ?? '' };
    } catch (error) {
      if (error instanceof RestError && error.statusCode === 409) return this.get(tenant, request.id);
      throw error;
    }
  }

  async find(tenant: TenantScope, id: string): Promise<StoredRequest | undefined> {
    if (!REQUEST_ID_PATTERN.test(id)) return undefined;
    const table = await this.table(tenant);
    const entity = await orAbsent(table.getEntity<RequestEntity>(tenant.tenantId, id));
    return entity && fromEntity(entity);
  }

  async get(tenant: TenantScope, id: string): Promise<StoredRequest> {
    const stored = await this.find(tenant, id);
    if (!stored) throw notFound(`Request ${id}`);
    return stored;
  }

  /** Replaces a request if it has not changed since it was read; 409 Conflict otherwise. */
  async replace(tenant: TenantScope, stored: StoredRequest): Promise<StoredRequest> {
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

  /** Requests received in [from, to] (their ids say when), newest first, a page at a time. */
  async *receivedBetween(tenant: TenantScope, from: Date, to: Date): AsyncGenerator<DataSubjectRequest[]> {
    yield* requestsReceivedBetween(await this.table(tenant), tenant.tenantId, from, to);
  }

  /** Every request in one of `statuses`, whenever received (the open ones are few). */
  async *withStatus(
    tenant: TenantScope,
    statuses: readonly RequestStatus[],
  ): AsyncGenerator<DataSubjectRequest[]> {
    if (statuses.length === 0) return;
    const either = statuses.map((status) => odata`status eq ${status}`).join(' or ');
    const filter = odata`PartitionKey eq ${tenant.tenantId}` + ` and (${either})`;
    const table = await this.table(tenant);
    for await (const page of table
      .listEntities<RequestEntity>({ queryOptions: { filter, select: ['document'] } })
      .byPage({ maxPageSize: 1000 })) {
      if (page.length > 0) yield page.map((entity) => JSON.parse(entity.document) as DataSubjectRequest);
    }
  }

  async list(
    tenant: TenantScope,
    filter: RequestFilter,
    page: PageRequest,
  ): Promise<Page<DataSubjectRequest>> {
    const scope = listScope(TABLES.requests, tenant.tenantId);
    const position = readContinuation(page.continuation, scope, listPosition);
    const conditions = [odata`PartitionKey eq ${tenant.tenantId}`];
    if (position) conditions.push(odata`RowKey gt ${position.after}`);
    if (filter.status) conditions.push(odata`status eq ${filter.status}`);
    if (filter.type) conditions.push(odata`type eq ${filter.type}`);
    const table = await this.table(tenant);
    const top = Math.max(1, page.top);
    const pages = table
      .listEntities<RequestEntity>({ queryOptions: { filter: conditions.join(' and ') } })
      .byPage({ maxPageSize: top + 1 });
    const found = await keysetPage(pages, top, scope, (entity) => entity.rowKey);
    return { ...found, items: found.items.map((entity) => fromEntity(entity).request) };
  }
}

/** The id prefix of a request received at `time`: ids sort newest first by it (newRequestId). */
const idPrefixAt = (time: Date) =>
  (MAX_TIME - Math.min(Math.max(time.getTime(), 0), MAX_TIME)).toString(36).padStart(9, '0');

/** Requests received in [from, to], newest first, a storage page at a time (one key range of the partition). */
async function* requestsReceivedBetween(
  table: TableClient,
  tenantId: string,
  from: Date,
  to: Date,
): AsyncGenerator<DataSubjectRequest[]> {
  const filter =
    odata`PartitionKey eq ${tenantId} and RowKey ge ${idPrefixAt(to)}` +
    odata` and RowKey lt ${`${idPrefixAt(from)}~`}`;
  for await (const page of table
    .listEntities<RequestEntity>({ queryOptions: { filter, select: ['document'] } })
    .byPage({ maxPageSize: 1000 })) {
    const requests = page
      .map((entity) => JSON.parse(entity.document) as DataSubjectRequest)
      .filter((r) => Date.parse(r.receivedAt) >= from.getTime() && Date.parse(r.receivedAt) <= to.getTime());
    if (requests.length > 0) yield requests;
  }
}

/** Someone else changed the request between our read and our write. */
export class ConcurrentChangeError extends DomainError {
  constructor() {
    super('Conflict', 'The request was changed concurrently; retry.');
  }
}

function toEntity(tenant: TenantScope, request: DataSubjectRequest, outbox: OutboxEffect[]): RequestEntity {
  if (request.tenantId !== tenant.tenantId) throw new DomainError('Internal', 'A request left its tenant.');
  return {
    partitionKey: tenant.tenantId,
    rowKey: request.id,
    type: request.type,
    status: request.status,
    document: JSON.stringify(request),
    outbox: JSON.stringify(outbox),
  };
}

function fromEntity(entity: TableEntityResult<RequestEntity>): StoredRequest {
  return {
    request: JSON.parse(entity.document) as DataSubjectRequest,
    outbox: JSON.parse(entity.outbox || '[]') as OutboxEffect[],
    etag: entity.etag,
  };
}

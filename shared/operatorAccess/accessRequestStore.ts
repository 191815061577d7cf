// Operator access requests in the tenant's geography (table `operatorAccess`, partition the tenant id; the
// tenant's policy is row `~policy`), and a global index of the requests still open (table
// `operatorAccessOpen`: ids and end times only, no personal data) so the expiry timer reads one partition,
// not every tenant. Saves are ETag-guarded: two decisions at once cannot both win.
import { odata, RestError, type TableClient } from '@azure/data-tables';

import { DomainError } from '../errors';
import { NEWEST_FIRST_KEY } from '../ids';
import {
  listScope,
  type Page,
  type PageRequest,
  keysetPage,
  readContinuation,
  rowKeyPosition,
} from '../paging';
import type { TenantScope } from '../residency/tenantDirectory';
import { orAbsent } from '../storage/absent';
import { GLOBAL_TABLES, TABLES } from '../storage/names';
import type { StorageAccounts } from '../storage/storageAccounts';
import { type AccessRequest, endsAt, keyOfId } from './accessRequest';

const POLICY_ROW = '~policy';
const OPEN_PARTITION = 'open';

interface RequestEntity {
  partitionKey: string;
  rowKey: string;
  requesterId: string;
  document: string;
}

export interface StoredAccessRequest {
  request: AccessRequest;
  etag: string;
}

export interface OperatorAccessPolicy {
  requireTenantApproval: boolean;
}

export class AccessRequestStore {
  constructor(private readonly storage: StorageAccounts) {}

  private table(tenant: TenantScope): Promise<TableClient> {
    return tenant.account.table(TABLES.operatorAccess);
  }

  private index(): Promise<TableClient> {
    return this.storage.global.table(GLOBAL_TABLES.operatorAccessOpen);
  }

  /** Entered in the open index first, so the expiry timer never misses a request that exists. */
  async create(tenant: TenantScope, request: AccessRequest): Promise<StoredAccessRequest> {
    await this.markOpen(request);
    const { etag } = await (await this.table(tenant)).createEntity(toEntity(request));
    return { request, etag: etag! };
  }

  async get(tenant: TenantScope, id: string): Promise<StoredAccessRequest | undefined> {
    const { tenantId, rowKey } = keyOfId(id);
    if (tenantId !== tenant.tenantId || !NEWEST_FIRST_KEY.test(rowKey)) return undefined;
    const entity = await orAbsent(
      (await this.table(tenant)).getEntity<RequestEntity>(tenant.tenantId, rowKey),
    );
    return entity && { request: JSON.parse(entity.document) as AccessRequest, etag: entity.etag };
  }

  /** Saves a decision if nobody saved one since `etag` (409 Conflict otherwise); keeps the open index in step. */
  async save(tenant: TenantScope, request: AccessRequest, etag: string): Promise<StoredAccessRequest> {
    const table = await this.table(tenant);
    let saved: string | undefined;
    try {
      saved = (await table.updateEntity(toEntity(request), 'Replace', { etag })).etag;
    } catch (error) {
      if (error instanceof RestError && error.statusCode === 412) {
        throw new DomainError(
          'Conflict',
          `Access request ${request.id} was decided meanwhile; read it again.`,
        );
      }
      throw error;
    }
    await this.markOpen(request);
    return { request, etag: saved! };
  }

  /** The tenant's requests, newest first. */
  async list(tenant: TenantScope, page: PageRequest): Promise<Page<AccessRequest>> {
    const scope = listScope(TABLES.operatorAccess, tenant.tenantId);
    const position = readContinuation(page.continuation, scope, rowKeyPosition(NEWEST_FIRST_KEY));
    const conditions = [odata`PartitionKey eq ${tenant.tenantId}`, odata`RowKey lt ${POLICY_ROW}`];
    if (position) conditions.push(odata`RowKey gt ${position.after}`);
    const pages = (await this.table(tenant))
      .listEntities<RequestEntity>({ queryOptions: { filter: conditions.join(' and ') } })
      .byPage({ maxPageSize: page.top + 1 });
    const found = await keysetPage(pages, page.top, scope, (row) => row.rowKey);
    return { ...found, items: found.items.map((row) => JSON.parse(row.document) as AccessRequest) };
  }

  /** Every request of one operator for the tenant (few: they are made by hand). */
  async *byRequester(tenant: TenantScope, objectId: string): AsyncGenerator<AccessRequest> {
    const filter = odata`PartitionKey eq ${tenant.tenantId} and RowKey lt ${POLICY_ROW} and requesterId eq ${objectId}`;
    for await (const row of (await this.table(tenant)).listEntities<RequestEntity>({
      queryOptions: { filter },
    })) {
      yield JSON.parse(row.document) as AccessRequest;
    }
  }

  async policy(tenant: TenantScope): Promise<OperatorAccessPolicy> {
    const row = await orAbsent(
      (await this.table(tenant)).getEntity<{ requireTenantApproval: boolean }>(tenant.tenantId, POLICY_ROW),
    );
    return { requireTenantApproval: row?.requireTenantApproval === true };
  }

  async setPolicy(tenant: TenantScope, policy: OperatorAccessPolicy): Promise<void> {
    await (
      await this.table(tenant)
    ).upsertEntity(
      {
        partitionKey: tenant.tenantId,
        rowKey: POLICY_ROW,
        requireTenantApproval: policy.requireTenantApproval,
      },
      'Replace',
    );
  }

  /** Requests whose end (decision deadline or grant end) is at or before `before`, from the open index. */
  async *openEndingBefore(before: Date): AsyncGenerator<{ id: string; tenantId: string }> {
    const filter = odata`PartitionKey eq ${OPEN_PARTITION} and endsAt le ${before.toISOString()}`;
    for await (const row of (await this.index()).listEntities<{ rowKey: string; tenantId: string }>({
      queryOptions: { filter },
    })) {
      yield { id: row.rowKey, tenantId: row.tenantId };
    }
  }

  /** A request that will not end by itself any more leaves the open index; one that will is (re)entered. */
  async markOpen(request: AccessRequest): Promise<void> {
    const index = await this.index();
    const end = endsAt(request);
    if (end && !request.expiryRecordedAt) {
      await index.upsertEntity(
        { partitionKey: OPEN_PARTITION, rowKey: request.id, tenantId: request.tenantId, endsAt: end },
        'Replace',
      );
    } else {
      await orAbsent(index.deleteEntity(OPEN_PARTITION, request.id));
    }
  }

  /** An index entry whose request no longer exists (a tenant purged meanwhile). */
  async forgetOpen(id: string): Promise<void> {
    await orAbsent((await this.index()).deleteEntity(OPEN_PARTITION, id));
  }
}

function toEntity(request: AccessRequest): RequestEntity {
  return {
    partitionKey: request.tenantId,
    rowKey: keyOfId(request.id).rowKey,
    requesterId: request.requester.objectId,
    document: JSON.stringify(request),
  };
}

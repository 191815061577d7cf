// A tenant's requests as JSON documents in one Table partition (PartitionKey the tenant id, RowKey the id,
// newest first), each with the side effects of its last change not yet carried out (the outbox, written in
// the same ETag-guarded write as the change). Data subject requests and alert data requests are both kept
// this way; each names its table, its id pattern and the columns its lists filter on.
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
import { orAbsent } from './absent';
import type { StorageAccount } from './storageAccount';

/** A document as stored, with its ETag and its side effects not yet carried out. */
export interface StoredDocument<T, E> {
  request: T;
  outbox: E[];
  etag: string;
}

/** Someone else changed the document between our read and our write. */
export class ConcurrentChangeError extends DomainError {
  constructor() {
    super('Conflict', 'The request was changed concurrently; retry.');
  }
}

/** How often an update reads and decides again when other writers keep changing the document. */
const CONCURRENT_ATTEMPTS = 5;

interface DocumentEntity {
  partitionKey: string;
  rowKey: string;
  /** The whole document as JSON; the other columns exist for server-side filters. */
  document: string;
  outbox?: string;
  [column: string]: string | undefined;
}

export interface DocumentTableOptions<T> {
  table: string;
  /** Ids that can exist; any other is not found without a storage call. */
  idPattern: RegExp;
  /** Columns beside the document, for server-side filters. */
  columns: (document: T) => Record<string, string>;
  /** What a missing document is called in a 404 (`Request`, `Alert data request`). */
  name: string;
}

interface Scope {
  tenantId: string;
  account: StorageAccount;
}

export class DocumentTable<T extends { id: string; tenantId: string }, E> {
  private readonly listPosition;

  constructor(private readonly options: DocumentTableOptions<T>) {
    this.listPosition = rowKeyPosition(options.idPattern);
  }

  /** Inserts a new document; an id that exists already returns the stored one (a retried create). */
  async insert(tenant: Scope, document: T, outbox: E[]): Promise<StoredDocument<T, E>> {
    const table = await this.table(tenant);
    try {
      const { etag } = await table.createEntity(this.toEntity(tenant, document, outbox));
      return { request: document, outbox, etag: etag ?? '' };
    } catch (error) {
      if (error instanceof RestError && error.statusCode === 409) return this.get(tenant, document.id);
      throw error;
    }
  }

  async find(tenant: Scope, id: string): Promise<StoredDocument<T, E> | undefined> {
    if (!this.options.idPattern.test(id)) return undefined;
    const table = await this.table(tenant);
    const entity = await orAbsent(table.getEntity<DocumentEntity>(tenant.tenantId, id));
    return entity && fromEntity<T, E>(entity);
  }

  async get(tenant: Scope, id: string): Promise<StoredDocument<T, E>> {
    const stored = await this.find(tenant, id);
    if (!stored) throw notFound(`${this.options.name} ${id}`);
    return stored;
  }

  /** Replaces a document if it has not changed since it was read; ConcurrentChangeError otherwise. */
  async replace(tenant: Scope, stored: StoredDocument<T, E>): Promise<StoredDocument<T, E>> {
    const table = await this.table(tenant);
    try {
      const { etag } = await table.updateEntity(
        this.toEntity(tenant, stored.request, stored.outbox),
        'Replace',
        { etag: stored.etag },
      );
      return { ...stored, etag: etag ?? '' };
    } catch (error) {
      if (error instanceof RestError && error.statusCode === 412) throw new ConcurrentChangeError();
      throw error;
    }
  }

  /**
   * Reads the document, lets `next` say what it becomes (undefined: nothing to write) and replaces it under
   * the ETag `next` returns (the one read, or that of a write `next` made itself); when another writer
   * changed it meanwhile, reads and decides again, up to CONCURRENT_ATTEMPTS times. Returns what was
   * written, or undefined when `next` wrote nothing.
   */
  async update(
    tenant: Scope,
    id: string,
    next: (
      stored: StoredDocument<T, E>,
    ) => Promise<StoredDocument<T, E> | undefined> | StoredDocument<T, E> | undefined,
  ): Promise<StoredDocument<T, E> | undefined> {
    for (let attempt = 1; ; attempt++) {
      const changed = await next(await this.get(tenant, id));
      if (!changed) return undefined;
      try {
        return await this.replace(tenant, changed);
      } catch (error) {
        if (!(error instanceof ConcurrentChangeError) || attempt >= CONCURRENT_ATTEMPTS) throw error;
      }
    }
  }

  /** A page of documents, newest first, whose columns equal `filter` (undefined values filter nothing). */
  async list(tenant: Scope, filter: Record<string, string | undefined>, page: PageRequest): Promise<Page<T>> {
    const scope = listScope(this.options.table, tenant.tenantId);
    const position = readContinuation(page.continuation, scope, this.listPosition);
    const conditions = [odata`PartitionKey eq ${tenant.tenantId}`];
    if (position) conditions.push(odata`RowKey gt ${position.after}`);
    for (const [column, value] of Object.entries(filter)) {
      // Column names are the code's own; values are quoted as OData strings.
      if (value !== undefined) conditions.push(`${column} eq '${value.replaceAll("'", "''")}'`);
    }
    const table = await this.table(tenant);
    const top = Math.max(1, page.top);
    const pages = table
      .listEntities<DocumentEntity>({ queryOptions: { filter: conditions.join(' and ') } })
      .byPage({ maxPageSize: top + 1 });
    const found = await keysetPage(pages, top, scope, (entity) => entity.rowKey);
    return { ...found, items: found.items.map((entity) => fromEntity<T, E>(entity).request) };
  }

  /** Every document, a storage page at a time, that `filter` (an OData filter within the partition) selects. */
  async *pages(tenant: Scope, filter?: string): AsyncGenerator<T[]> {
    const table = await this.table(tenant);
    const query = odata`PartitionKey eq ${tenant.tenantId}` + (filter ? ` and (${filter})` : '');
    for await (const page of table
      .listEntities<DocumentEntity>({ queryOptions: { filter: query, select: ['document'] } })
      .byPage({ maxPageSize: 1000 })) {
      if (page.length > 0) yield page.map((entity) => JSON.parse(entity.document) as T);
    }
  }

  private table(tenant: Scope): Promise<TableClient> {
    return tenant.account.table(this.options.table);
  }

  private toEntity(tenant: Scope, document: T, outbox: E[]): DocumentEntity {
    if (document.tenantId !== tenant.tenantId) {
      throw new DomainError('Internal', 'A request left its tenant.');
    }
    return {
      ...this.options.columns(document),
      partitionKey: tenant.tenantId,
      rowKey: document.id,
      document: JSON.stringify(document),
      outbox: JSON.stringify(outbox),
    };
  }
}

function fromEntity<T, E>(entity: TableEntityResult<DocumentEntity>): StoredDocument<T, E> {
  return {
    request: JSON.parse(entity.document) as T,
    outbox: JSON.parse(entity.outbox || '[]') as E[],
    etag: entity.etag,
  };
}

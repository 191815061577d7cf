// Counts storage requests two ways: a pipeline policy on every Table client (the product's, through
// StorageClientOptions.tablePolicies, and the benchmark's raw ones), and every HTTP request the process
// sends, by Azurite service, through node's `http.client.request.start` diagnostics channel. The product
// builds its Blob and Queue clients without a policy hook, so the channel is what counts those.
import type { ClientRequest } from 'node:http';
import { subscribe } from 'node:diagnostics_channel';

import type { AzuritePorts } from '../local/azurite';
import type { StorageClientOptions } from '../shared/storage/storageAccount';

/** The pipeline policy type of @azure/data-tables, without depending on @azure/core-rest-pipeline directly. */
export type TablePolicy = NonNullable<StorageClientOptions['tablePolicies']>[number]['policy'];

export interface RequestCounts {
  /** Table requests seen by the pipeline policy (every try, retries included). */
  tablePolicy: number;
  /** HTTP requests sent by the process, by Azurite service. */
  table: number;
  blob: number;
  queue: number;
  /** HTTP requests to anything else (none expected). */
  other: number;
  /**
   * HTTP requests by operation: `GET records()` a query, `GET recordLookup(key)` a point read,
   * `PUT …(key)` an upsert, `POST records` an insert, `POST $batch` an entity-group transaction,
   * `blob PUT block` and the like for Blob and Queue.
   */
  operations: Record<string, number>;
}

type Service = 'table' | 'blob' | 'queue' | 'other';

/** Table requests by kind (`$batch <table> <action>` names the table and action inside a transaction). */
export type TableTrace = Record<string, { requests: number; rows: number; ms: number }>;

/**
 * Table requests by what they touch and how: `<table>[(<rows>)] read|write|transaction` (see accessKindOf),
 * with the rows they carried, the time each took, and those answered with an error status, by status (a 404
 * for a row looked up and absent, a 409 or 412 for a write that lost a race and is tried again).
 */
export type AccessTrace = Record<
  string,
  { requests: number; rows: number; ms: number; failed: Record<string, number> }
>;

const SUBREQUEST = /^(DELETE|POST|PUT|PATCH|MERGE) (\S+) HTTP\/1\.1\r?$/gm;

export class RequestCounter {
  private readonly counts: Omit<RequestCounts, 'operations'> = {
    tablePolicy: 0,
    table: 0,
    blob: 0,
    queue: 0,
    other: 0,
  };
  private readonly operations = new Map<string, number>();
  private readonly serviceByPort = new Map<string, Service>();
  private trace: TableTrace | undefined;
  private accessTrace: AccessTrace | undefined;

  /** Add to every Table client; `perRetry` so that a retried request counts as the requests it sent. */
  readonly tablePolicy: TablePolicy = {
    name: 'benchTableRequestCounter',
    sendRequest: async (request, next) => {
      this.counts.tablePolicy++;
      const { trace, accessTrace } = this;
      if (!trace && !accessTrace) return next(request);
      const kind = trace && tableKindOf(request.method, request.url, request.body);
      const access = accessTrace && accessKindOf(request.method, request.url, request.body);
      const started = performance.now();
      let status = 0;
      try {
        const response = await next(request);
        status = response.status;
        return response;
      } catch (error) {
        status = (error as { statusCode?: number }).statusCode ?? 0;
        throw error;
      } finally {
        const ms = performance.now() - started;
        if (trace && kind) {
          const entry = (trace[kind.kind] ??= { requests: 0, rows: 0, ms: 0 });
          entry.requests++;
          entry.rows += kind.rows;
          entry.ms += ms;
        }
        if (accessTrace && access) {
          const entry = (accessTrace[access.kind] ??= { requests: 0, rows: 0, ms: 0, failed: {} });
          entry.requests++;
          entry.rows += access.rows;
          entry.ms += ms;
          // 0: no response (a network error).
          if (status >= 400 || status === 0) entry.failed[status] = (entry.failed[status] ?? 0) + 1;
        }
      }
    },
  };

  /**
   * Starts counting Table requests by access kind (accessKindOf), with the time each took; the function
   * returned stops it and gives the counts. Independent of startTrace: both may run at once.
   */
  startAccessTrace(): () => AccessTrace {
    const trace: AccessTrace = {};
    this.accessTrace = trace;
    return () => {
      if (this.accessTrace === trace) this.accessTrace = undefined;
      return trace;
    };
  }

  /**
   * Starts tracing Table requests by kind, with the time each took (from the policy to the response);
   * the function returned stops it and gives the trace.
   */
  startTrace(): () => TableTrace {
    const trace: TableTrace = {};
    this.trace = trace;
    return () => {
      if (this.trace === trace) this.trace = undefined;
      return trace;
    };
  }

  constructor(ports: AzuritePorts) {
    this.serviceByPort.set(String(ports.table), 'table');
    this.serviceByPort.set(String(ports.blob), 'blob');
    this.serviceByPort.set(String(ports.queue), 'queue');
    subscribe('http.client.request.start', (message) => {
      const request = (message as { request: ClientRequest }).request;
      const host = String(request.getHeader('host') ?? '');
      const port = host.slice(host.lastIndexOf(':') + 1);
      const service = this.serviceByPort.get(port) ?? 'other';
      this.counts[service]++;
      const operation = operationOf(service, request.method, request.path);
      this.operations.set(operation, (this.operations.get(operation) ?? 0) + 1);
    });
  }

  snapshot(): RequestCounts {
    return { ...this.counts, operations: Object.fromEntries(this.operations) };
  }

  /** Requests since `before`. */
  since(before: RequestCounts): RequestCounts {
    const now = this.snapshot();
    return {
      tablePolicy: now.tablePolicy - before.tablePolicy,
      table: now.table - before.table,
      blob: now.blob - before.blob,
      queue: now.queue - before.queue,
      other: now.other - before.other,
      operations: Object.fromEntries(
        Object.entries(now.operations)
          .map(([name, count]): [string, number] => [name, count - (before.operations[name] ?? 0)])
          .filter(([, count]) => count > 0)
          .sort(([, a], [, b]) => b - a),
      ),
    };
  }
}

/** A short name for a request: method and table (with the kind of key) or Blob `comp`. */
function operationOf(service: Service, method: string, path: string): string {
  const [pathname = '', query = ''] = path.split('?');
  // Azurite's URLs: /<account>/<resource>...
  const resource = decodeURIComponent(pathname.split('/')[2] ?? '');
  if (service === 'table') {
    const open = resource.indexOf('(');
    if (open < 0) return `${method} ${resource}`;
    const table = resource.slice(0, open);
    return `${method} ${table}${resource.slice(open) === '()' ? '()' : '(key)'}`;
  }
  if (service === 'blob') {
    const comp = new URLSearchParams(query).get('comp');
    return `blob ${method} ${comp ?? (pathname.split('/').length > 3 ? 'blob' : 'container')}`;
  }
  return `${service} ${method}`;
}

/** Every storage request in a count (by the HTTP channel; the policy count is a cross-check of `table`). */
export const totalRequests = (counts: RequestCounts): number =>
  counts.table + counts.blob + counts.queue + counts.other;

/** A Table request's kind: method and table, or for a transaction the table and action inside it. */
function tableKindOf(method: string, url: string, body: unknown): { kind: string; rows: number } {
  const resourceOf = (address: string) => {
    const segment = decodeURIComponent(new URL(address).pathname.split('/').pop() ?? '');
    const open = segment.indexOf('(');
    if (open < 0) return { table: segment, keyed: false };
    return { table: segment.slice(0, open), keyed: segment.slice(open) !== '()' };
  };
  if (url.includes('$batch') && typeof body === 'string') {
    const kinds = new Map<string, number>();
    for (const match of body.matchAll(SUBREQUEST)) {
      const kind = `$batch ${resourceOf(match[2]!).table} ${match[1]!}`;
      kinds.set(kind, (kinds.get(kind) ?? 0) + 1);
    }
    const rows = [...kinds.values()].reduce((sum, n) => sum + n, 0);
    return { kind: [...kinds.keys()].sort().join(' + ') || '$batch', rows };
  }
  const { table, keyed } = resourceOf(url);
  return { kind: `${method} ${table}${keyed ? '(key)' : method === 'GET' ? ' query' : ''}`, rows: 1 };
}

/**
 * What a Table request touches and how: its table, the family of rows where the keys tell it (the product's
 * layout: `recordLookup` rows are `alias` (`<tenant>_i…`), `record` (`_r…`) or `device` (`_d…`) lookups by
 * their partition; `records` rows are `record` rows, or the subject's `~key` (data key), `~id_` (identifier)
 * and other `~` rows by their RowKey; a query names the family of the partition its filter names, if any),
 * and the access: `read` for GET, `write` for POST, PUT, MERGE, PATCH and DELETE, `transaction` for a
 * `$batch` (named by the tables and rows inside it, e.g. `records(record)+expiry transaction`).
 */
export function accessKindOf(method: string, url: string, body: unknown): { kind: string; rows: number } {
  if (url.includes('$batch')) {
    const touched = new Set<string>();
    let rows = 0;
    if (typeof body === 'string') {
      const matches = [...body.matchAll(SUBREQUEST)];
      for (const [i, match] of matches.entries()) {
        // An insert's keys are in its own part of the body, up to the next sub-request.
        touched.add(targetOf(match[2]!, body.slice(match.index, matches[i + 1]?.index)));
        rows++;
      }
    }
    return { kind: `${[...touched].sort().join('+') || 'unknown'} transaction`, rows };
  }
  return { kind: `${targetOf(url, body)} ${method.toUpperCase() === 'GET' ? 'read' : 'write'}`, rows: 1 };
}

/**
 * `<table>` or `<table>(<row family>)` of a Table request: the keys are in its URL, or for an insert (`POST
 * <table>`) in its JSON body; `Tables` is the table list (a `POST Tables` creates a table).
 */
function targetOf(address: string, body?: unknown): string {
  const parsed = new URL(address, 'http://localhost');
  const segment = decodeURIComponent(parsed.pathname.split('/').pop() ?? '');
  const open = segment.indexOf('(');
  const table = open < 0 ? segment : segment.slice(0, open);
  const keys = open < 0 ? '' : segment.slice(open);
  const inserted = !keys && typeof body === 'string' ? body : '';
  const partition =
    /PartitionKey='([^']*)'/.exec(keys)?.[1] ??
    /PartitionKey eq '([^']*)'/.exec(parsed.searchParams.get('$filter') ?? '')?.[1] ??
    /"PartitionKey":"([^"]*)"/.exec(inserted)?.[1];
  const row = /RowKey='([^']*)'/.exec(keys)?.[1] ?? /"RowKey":"([^"]*)"/.exec(inserted)?.[1];
  const family = rowFamilyOf(table, partition, row);
  return family ? `${table}(${family})` : table;
}

function rowFamilyOf(table: string, partition?: string, row?: string): string | undefined {
  if (table === 'recordLookup' && partition) {
    const family = partition.slice(partition.indexOf('_') + 1, partition.indexOf('_') + 2);
    return { i: 'alias', r: 'record', d: 'device' }[family] ?? family;
  }
  if (table === 'records') {
    if (row === undefined) return partition ? 'subject query' : undefined;
    if (!row.startsWith('~')) return 'record';
    if (row === '~key') return '~key';
    if (row.startsWith('~id_')) return '~id';
    return row.split('_')[0];
  }
  return undefined;
}

// The storage layer's own residency check (SPEC §8): every write request to a geography's account is read
// for the tenant it touches (tables: the partition keys, which all start with the tenant id; blobs: the first
// segment of the blob name) and let through only when the write fence says that tenant may be written in
// this geography now. A write that names no tenant, or more than one, is refused: nothing reaches a
// geography's account without being attributed to exactly one tenant.
//
// The parsing is pure and exported for tests; the policies are installed by StorageAccount on every Table
// and Blob client of a geography account once a fence is set (StorageAccounts.fenceWrites).
import type { PipelinePolicy } from '@azure/core-rest-pipeline';
import type { RequestPolicy, RequestPolicyFactory, WebResource } from '@azure/storage-blob';

import { DomainError } from '../errors';

/** Decides whether a tenant may be written in a geography's account at this moment. */
export interface WriteFence {
  /**
   * Resolves when the write may go; throws ResidencyViolation when the tenant's data does not belong in this
   * geography, DomainError `TenantMigrating` while the tenant is moving.
   */
  assertWritable(tenantId: string, geography: string): Promise<void>;
}

/** A write refused because it would put a tenant's data outside its geography (or name no single tenant). */
export class ResidencyViolation extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ResidencyViolation';
  }
}

/** What a request writes: nothing (a read or a creation of a table or container), or one tenant's data. */
export type WriteTarget =
  { kind: 'read' } | { kind: 'tenant'; tenantId: string } | { kind: 'refused'; reason: string };

const READS = new Set(['GET', 'HEAD', 'OPTIONS']);

/** The tenant a partition key belongs to: every key is `<tenantId>` or `<tenantId>_<rest>`. */
export const tenantOfPartitionKey = (partitionKey: string): string => {
  const at = partitionKey.indexOf('_');
  return at < 0 ? partitionKey : partitionKey.slice(0, at);
};

const KEYS_IN_URL = /\(PartitionKey='((?:[^']|'')*)'/g;
const unquote = (value: string) => decodeURIComponent(value).replaceAll("''", "'");

/** Which tenant a Table request writes. `body` is the request body when it is text. */
export function tableWriteTarget(method: string, url: string, body: unknown): WriteTarget {
  const verb = method.toUpperCase();
  if (READS.has(verb)) return { kind: 'read' };
  const path = pathOf(url);
  // Creating a table holds no tenant's data; deleting one would reach every tenant's.
  if (/\/Tables$/i.test(path) && verb === 'POST') return { kind: 'read' };
  if (/\/Tables\(/i.test(path)) return { kind: 'refused', reason: 'a table deletion touches every tenant' };
  // Queries sent as POST do not exist in the Table API; every other non-read is a write of rows.
  const keys: string[] = [];
  const text = typeof body === 'string' ? body : undefined;
  if (path.endsWith('/$batch')) {
    if (text === undefined) return { kind: 'refused', reason: 'a batch whose body cannot be read' };
    for (const line of text.split(/\r?\n/)) {
      if (/^[A-Z]+ \S+ HTTP\/1\.1$/.test(line)) {
        keys.push(...partitionKeysInUrl(line));
      } else if (line.startsWith('{')) {
        const key = partitionKeyInJson(line);
        if (key === null)
          return { kind: 'refused', reason: 'a batch entity without a readable PartitionKey' };
        keys.push(key);
      }
    }
  } else {
    keys.push(...partitionKeysInUrl(url));
    if (text !== undefined && text.trimStart().startsWith('{')) {
      const key = partitionKeyInJson(text);
      if (key !== null) keys.push(key);
      else if (keys.length === 0)
        return { kind: 'refused', reason: 'an entity without a readable PartitionKey' };
    }
  }
  return oneTenant(keys.map(tenantOfPartitionKey));
}

/**
 * Which tenant a Blob request writes. `serviceUrl` is the account's Blob endpoint (with the account name in
 * the path for Azurite's path-style URLs), so that what follows is `<container>/<blob name>`.
 */
export function blobWriteTarget(method: string, url: string, serviceUrl: string): WriteTarget {
  const verb = method.toUpperCase();
  if (READS.has(verb)) return { kind: 'read' };
  const base = pathOf(serviceUrl).replace(/\/+$/, '');
  const path = pathOf(url);
  if (!path.startsWith(`${base}/`)) return { kind: 'refused', reason: 'a request outside the account' };
  const [container, ...name] = path.slice(base.length + 1).split('/');
  const query = new URL(url).searchParams;
  // Asking for a user delegation key (to sign download links under managed identity) writes nothing.
  if (!container && verb === 'POST' && query.get('comp') === 'userdelegationkey') return { kind: 'read' };
  if (name.length === 0 || (name.length === 1 && name[0] === '')) {
    // Creating a container holds no tenant's data; deleting one, or writing every blob's, would reach all.
    if (verb === 'PUT' && query.get('restype') === 'container' && !query.has('comp')) return { kind: 'read' };
    return { kind: 'refused', reason: `a container-wide ${verb} on ${container ?? ''}` };
  }
  const tenantId = decodeURIComponent(name[0]!);
  if (name.length < 2 || tenantId === '')
    return { kind: 'refused', reason: 'a blob outside any tenant folder' };
  return { kind: 'tenant', tenantId };
}

function oneTenant(tenants: string[]): WriteTarget {
  const distinct = new Set(tenants);
  if (distinct.size === 1) return { kind: 'tenant', tenantId: [...distinct][0]! };
  if (distinct.size === 0) return { kind: 'refused', reason: 'a write that names no tenant' };
  return { kind: 'refused', reason: `a write that names ${distinct.size} tenants` };
}

function partitionKeysInUrl(text: string): string[] {
  return [...text.matchAll(KEYS_IN_URL)].map((match) => unquote(match[1]!));
}

function partitionKeyInJson(text: string): string | null {
  try {
    const parsed: unknown = JSON.parse(text);
    const key = (parsed as { PartitionKey?: unknown } | null)?.PartitionKey;
    return typeof key === 'string' ? key : null;
  } catch {
    return null;
  }
}

/** The URL's path, still percent-encoded (blob names and keys are decoded where they are read). */
function pathOf(url: string): string {
  return new URL(url).pathname;
}

async function check(target: WriteTarget, fence: WriteFence, geography: string, what: string): Promise<void> {
  if (target.kind === 'read') return;
  if (target.kind === 'refused') {
    throw new ResidencyViolation(`Refused ${what} in ${geography}: ${target.reason}.`);
  }
  await fence.assertWritable(target.tenantId, geography);
}

/** The Table pipeline policy (per call, so it runs once per operation, before retries). */
export function tableResidencyPolicy(fence: WriteFence, geography: string): PipelinePolicy {
  return {
    name: 'residencyGuard',
    async sendRequest(request, next) {
      await check(
        tableWriteTarget(request.method, request.url, request.body),
        fence,
        geography,
        'a table write',
      );
      return next(request);
    },
  };
}

/** The Blob request policy factory (outermost, so it runs once per operation, before retries). */
export function blobResidencyPolicy(
  fence: WriteFence,
  geography: string,
  serviceUrl: string,
): RequestPolicyFactory {
  return {
    create: (next: RequestPolicy): RequestPolicy => ({
      sendRequest: async (request: WebResource) => {
        await check(
          blobWriteTarget(request.method, request.url, serviceUrl),
          fence,
          geography,
          'a blob write',
        );
        return next.sendRequest(request);
      },
    }),
  };
}

/** The error the fence throws while a tenant moves; HTTP answers 423 with Retry-After, queues retry later. */
export const tenantMigrating = (tenantId: string, retryAfterSeconds: number): DomainError =>
  new DomainError('TenantMigrating', `Tenant ${tenantId} is moving to another geography; retry later.`, [], {
    'Retry-After': String(retryAfterSeconds),
  });

export const isTenantMigrating = (error: unknown): error is DomainError =>
  error instanceof DomainError && error.code === 'TenantMigrating';

/** How long the refusal asks to wait, from its Retry-After. */
export const retryAfterOf = (error: DomainError): number => Number(error.headers['Retry-After'] ?? 60);

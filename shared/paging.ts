// One page of a collection, and the continuation that leads to the next. The continuation is opaque to
// callers (the HTTP edge hands it out as skipToken) but it is the service's own: every list issues and reads
// it here, as a position inside the one scope (table and partition) the list is confined to.
//
// The Table SDK's own token is not handed out: it carries the next partition and row keys, which a caller
// can rewrite to point a scan at another tenant's partition, and on garbage the SDK throws (a 500) instead
// of refusing. Nor is a MAC used: its key would have to be shared by every instance and rotated. A token
// bound to its scope and validated strictly needs no secret: forged, it can only move inside the caller's
// own list, which the caller may read anyway.
import { z } from 'zod';

export interface Page<T> {
  items: T[];
  continuation?: string;
}

export interface PageRequest {
  top: number;
  continuation?: string;
}

/** Beyond this a token is garbage (the edge allows 4096 characters; ours are far shorter). */
const MAX_TOKEN_LENGTH = 4096;
const BASE64URL = /^[A-Za-z0-9_-]+$/;

/**
 * A key the Table service accepts, as a keyset continuation carries it: 1 to 512 characters, none of those
 * Table keys refuse (/ \ # ? and control characters), and no lone surrogate (which cannot be URL-encoded
 * into the query, so the SDK would throw).
 */
export const tableKeySchema = z
  .string()
  .min(1)
  .max(512)
  // eslint-disable-next-line no-control-regex -- control characters are exactly what is refused
  .regex(/^[^/\\#?\u0000-\u001f\u007f-\u009f]+$/)
  .regex(/^\P{Cs}+$/u);

/**
 * The position after the last row handed out: a keyset continuation inside one partition. `rowKey` narrows
 * it to the keys the list's table actually holds.
 */
export const rowKeyPosition = (rowKey?: RegExp) =>
  z.strictObject({ after: rowKey ? tableKeySchema.regex(rowKey) : tableKeySchema });

/** The position after the last item handed out of a list numbered 1, 2, 3, … (a chain of sequences). */
export const sequencePosition = z.strictObject({
  after: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
});

/**
 * What a list is confined to: a table and the partition it reads there (or, for a log spread over block
 * partitions, the tenant prefix of those partitions). `/` occurs in neither, so no two scopes collide.
 */
export const listScope = (table: string, partition: string): string => `${table}/${partition}`;

/** The wire form of every continuation: base64url of JSON. Tests craft tokens with it. */
export function encodeContinuation(value: unknown): string {
  return Buffer.from(JSON.stringify(value), 'utf8').toString('base64url');
}

/** A continuation for the list confined to `scope` (see listScope) that resumes at `position`. */
export function issueContinuation<P>(scope: string, position: P): string {
  return encodeContinuation({ scope, position });
}

/**
 * The position a continuation resumes at, or undefined when there is none. A token that is not one this
 * service issued for this very scope, or whose position does not match `position`, throws
 * InvalidContinuationError (400 ValidationFailed, target `skipToken`), never anything else.
 */
export function readContinuation<P>(
  token: string | undefined,
  scope: string,
  position: z.ZodType<P>,
): P | undefined {
  if (token === undefined) return undefined;
  if (token.length > MAX_TOKEN_LENGTH || !BASE64URL.test(token)) {
    throw new InvalidContinuationError('it is not base64url');
  }
  let decoded: unknown;
  try {
    decoded = JSON.parse(Buffer.from(token, 'base64url').toString('utf8'));
  } catch {
    throw new InvalidContinuationError('it is not JSON');
  }
  const parsed = z.strictObject({ scope: z.string(), position }).safeParse(decoded);
  if (!parsed.success) throw new InvalidContinuationError('it is not a position in a list');
  if (parsed.data.scope !== scope) throw new InvalidContinuationError('it was issued for another list');
  return parsed.data.position;
}

/**
 * Keyset paging over rows that arrive in key order, page by page (a Table query with `RowKey gt after`):
 * the first `top` rows, and a continuation after the last of them when at least one more row follows. Reading
 * one row beyond the page is what tells a last page from a full one.
 */
export async function keysetPage<T>(
  pages: AsyncIterable<readonly T[]>,
  top: number,
  scope: string,
  rowKeyOf: (row: T) => string,
): Promise<Page<T>> {
  if (!Number.isSafeInteger(top) || top < 1) throw new RangeError(`A page holds 1 or more rows, not ${top}.`);
  const rows: T[] = [];
  for await (const page of pages) {
    rows.push(...page);
    if (rows.length > top) break;
  }
  if (rows.length <= top) return { items: rows };
  const items = rows.slice(0, top);
  return { items, continuation: issueContinuation(scope, { after: rowKeyOf(items[top - 1]!) }) };
}

export class InvalidContinuationError extends Error {
  constructor(reason?: string) {
    super(reason ? `The skipToken is not valid: ${reason}.` : 'The skipToken is not valid.');
    this.name = 'InvalidContinuationError';
  }
}

/** Every item of a paged listing, page after page: `list` is asked for the next page with its token. */
export async function* everyItem<T>(
  list: (page: PageRequest) => Promise<Page<T>>,
  top = 200,
): AsyncGenerator<T> {
  let continuation: string | undefined;
  do {
    const page = await list({ top, ...(continuation ? { continuation } : {}) });
    yield* page.items;
    continuation = page.continuation;
  } while (continuation);
}

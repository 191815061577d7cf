// Continuation tokens are the service's own: issued for one list scope, read back only there, and anything
// else (another tenant's token, the Table SDK's token, garbage) is refused with InvalidContinuationError,
// never another error. Property runs are seeded by test/support/fastCheck.ts (FC_SEED).
import fc from 'fast-check';

import {
  encodeContinuation,
  InvalidContinuationError,
  issueContinuation,
  keysetPage,
  listScope,
  readContinuation,
  rowKeyPosition,
  sequencePosition,
} from '../../shared/paging';
import { REQUEST_ID_PATTERN } from '../../shared/requests/requestRepository';

const TENANT = 'c0ffee00-0000-4000-8000-000000000001';
const OTHER_TENANT = 'c0ffee00-0000-4000-8000-000000000002';
const requests = listScope('requests', TENANT);
const requestPosition = rowKeyPosition(REQUEST_ID_PATTERN);
const REQUEST_ID = '0k2x9p7qa0123456789abcdef';
const base64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64');

/** What reading a token does: the position, or the refusal; any other throw fails the test. */
function outcome<P>(token: string, scope: string, schema: Parameters<typeof readContinuation<P>>[2]) {
  try {
    return { accepted: readContinuation(token, scope, schema) };
  } catch (error) {
    if (error instanceof InvalidContinuationError) return { refused: error.message };
    throw error;
  }
}

describe('readContinuation', () => {
  it('reads back the position it issued for the same scope', () => {
    const token = issueContinuation(requests, { after: REQUEST_ID });
    expect(readContinuation(token, requests, requestPosition)).toEqual({ after: REQUEST_ID });
    const audit = listScope('audit', TENANT);
    expect(readContinuation(issueContinuation(audit, { after: 1000 }), audit, sequencePosition)).toEqual({
      after: 1000,
    });
  });

  it('has no position when there is no token', () => {
    expect(readContinuation(undefined, requests, requestPosition)).toBeUndefined();
  });

  it("refuses a token issued for another tenant's partition or another table", () => {
    const foreign = issueContinuation(listScope('requests', OTHER_TENANT), { after: REQUEST_ID });
    expect(() => readContinuation(foreign, requests, requestPosition)).toThrow(
      new InvalidContinuationError('it was issued for another list'),
    );
    const otherList = issueContinuation(listScope('restrictions', TENANT), { after: REQUEST_ID });
    expect(() => readContinuation(otherList, requests, requestPosition)).toThrow(InvalidContinuationError);
  });

  // The token that answered 500 before: the service wrapped the Table SDK's token, which the SDK decodes with
  // JSON.parse (a SyntaxError on garbage) and whose next partition key a caller could point anywhere.
  it.each([
    ['an SDK token that is not base64 JSON', encodeContinuation({ t: 'x' })],
    [
      'an SDK token whose partition key is not a string',
      encodeContinuation({ t: base64({ nextPartitionKey: 5 }) }),
    ],
    [
      "an SDK token pointing at another tenant's partition",
      encodeContinuation({ t: base64({ nextPartitionKey: Buffer.from(OTHER_TENANT).toString('base64') }) }),
    ],
  ])('refuses the Table SDK token shape: %s', (_case, token) => {
    expect(() => readContinuation(token, requests, requestPosition)).toThrow(InvalidContinuationError);
  });

  it.each([
    ['empty', ''],
    ['not base64url', 'not a token!'],
    ['padded base64', `${encodeContinuation({ scope: requests, position: { after: REQUEST_ID } })}=`],
    ['standard base64 with + and /', '+/+/'],
    ['longer than 4096 characters', 'A'.repeat(4097)],
    ['base64url of text that is not JSON', Buffer.from('{scope:').toString('base64url')],
    ['JSON null', encodeContinuation(null)],
    ['a JSON string', encodeContinuation('requests')],
    ['a JSON array', encodeContinuation([requests, { after: REQUEST_ID }])],
    ['without a scope', encodeContinuation({ position: { after: REQUEST_ID } })],
    ['without a position', encodeContinuation({ scope: requests })],
    [
      'with an extra field',
      encodeContinuation({ scope: requests, position: { after: REQUEST_ID }, pk: 'x' }),
    ],
    [
      'with an extra position field',
      encodeContinuation({ scope: requests, position: { after: REQUEST_ID, x: 1 } }),
    ],
    ['with a row key that is no request id', issueContinuation(requests, { after: 'zzz' })],
    ['with a number for a row key', issueContinuation(requests, { after: 7 })],
    ['with a scope of another type', encodeContinuation({ scope: 1, position: { after: REQUEST_ID } })],
  ])('refuses a token that is %s', (_case, token) => {
    expect(() => readContinuation(token, requests, requestPosition)).toThrow(InvalidContinuationError);
  });

  it.each([
    ['a slash', 'a/b'],
    ['a backslash', 'a\\b'],
    ['a hash', 'a#b'],
    ['a question mark', 'a?b'],
    ['a control character', 'a\u0001b'],
    ['a C1 control character', 'a\u0085b'],
    ['a lone high surrogate', 'a\ud800'],
    ['a lone low surrogate', '\udfffb'],
    ['nothing', ''],
    ['more than 512 characters', 'k'.repeat(513)],
  ])('refuses a row key with %s, which Table storage would not take', (_case, after) => {
    const scope = listScope('restrictions', TENANT);
    expect(() => readContinuation(issueContinuation(scope, { after }), scope, rowKeyPosition())).toThrow(
      InvalidContinuationError,
    );
  });

  it.each([
    ['negative', -1],
    ['fractional', 1.5],
    ['beyond the safe integers', 2 ** 53],
    ['a string', '10'],
  ])('refuses a sequence position that is %s', (_case, after) => {
    const audit = listScope('audit', TENANT);
    expect(() => readContinuation(issueContinuation(audit, { after }), audit, sequencePosition)).toThrow(
      InvalidContinuationError,
    );
  });

  it('accepts or refuses any string, and throws nothing else', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string({ unit: 'binary', maxLength: 200 }),
          fc.base64String({ maxLength: 200 }),
          fc.stringMatching(/^[A-Za-z0-9_-]{0,300}$/),
        ),
        (token) => {
          const result = outcome(token, requests, requestPosition);
          if ('accepted' in result)
            expect(result.accepted).toEqual(expect.objectContaining({ after: expect.any(String) }));
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('accepts or refuses base64url of any JSON, and throws nothing else', () => {
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 6 }), (value) => {
        const result = outcome(encodeContinuation(value), requests, requestPosition);
        // Only an object naming this very scope and a request id is ever accepted.
        if ('accepted' in result) {
          expect(value).toEqual({ scope: requests, position: result.accepted });
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('accepts a near-valid token exactly when its scope is this one and its position is valid', () => {
    const scopes = fc.constantFrom(requests, listScope('requests', OTHER_TENANT), listScope('audit', TENANT));
    const afters = fc.oneof(
      fc.stringMatching(REQUEST_ID_PATTERN),
      fc.string({ unit: 'binary', maxLength: 40 }),
      fc.integer(),
      fc.constant(null),
    );
    fc.assert(
      fc.property(scopes, afters, (scope, after) => {
        const result = outcome(issueContinuation(scope, { after }), requests, requestPosition);
        const valid = scope === requests && typeof after === 'string' && REQUEST_ID_PATTERN.test(after);
        expect(result).toEqual(valid ? { accepted: { after } } : { refused: expect.any(String) });
      }),
      { numRuns: 1000 },
    );
  });

  it('gives back any valid row key and sequence it was given', () => {
    const rowKey = fc
      .string({ unit: 'grapheme', minLength: 1, maxLength: 100 })
      .filter((key) => rowKeyPosition().safeParse({ after: key }).success);
    fc.assert(
      fc.property(rowKey, fc.nat(), (key, sequence) => {
        const scope = listScope('restrictions', TENANT);
        expect(readContinuation(issueContinuation(scope, { after: key }), scope, rowKeyPosition())).toEqual({
          after: key,
        });
        const audit = listScope('audit', TENANT);
        expect(
          readContinuation(issueContinuation(audit, { after: sequence }), audit, sequencePosition),
        ).toEqual({
          after: sequence,
        });
      }),
      { numRuns: 500 },
    );
  });
});

describe('keysetPage', () => {
  async function* pagesOf<T>(pages: T[][], read: { pages: number }) {
    for (const page of pages) {
      read.pages += 1;
      yield page;
    }
  }

  it('hands out the first rows and a continuation after the last of them when more follow', async () => {
    const read = { pages: 0 };
    const page = await keysetPage(pagesOf([['a', 'b'], ['c', 'd'], ['e']], read), 3, requests, (row) => row);
    expect(page.items).toEqual(['a', 'b', 'c']);
    expect(readContinuation(page.continuation, requests, rowKeyPosition())).toEqual({ after: 'c' });
    expect(read.pages).toBe(2);
  });

  it('has no continuation on a last page, even a full one', async () => {
    expect(await keysetPage(pagesOf([['a'], ['b']], { pages: 0 }), 2, requests, (row) => row)).toEqual({
      items: ['a', 'b'],
    });
    expect(await keysetPage(pagesOf([[], []], { pages: 0 }), 2, requests, (row) => row)).toEqual({
      items: [],
    });
  });

  it('refuses a page size below one instead of handing out a broken continuation', async () => {
    await expect(
      keysetPage(pagesOf([['a']], { pages: 0 }), 0, requests, (row) => row),
    ).rejects.toBeInstanceOf(RangeError);
  });

  it('walks a sorted key set page by page, each key exactly once, in order', async () => {
    const keys = fc.uniqueArray(fc.stringMatching(/^[a-z0-9]{1,8}$/), { maxLength: 40 }).map((k) => k.sort());
    await fc.assert(
      fc.asyncProperty(
        keys,
        fc.integer({ min: 1, max: 7 }),
        fc.integer({ min: 1, max: 5 }),
        async (all, top, serverPage) => {
          const seen: string[] = [];
          let continuation: string | undefined;
          for (let calls = 0; calls <= all.length + 1; calls++) {
            const after = readContinuation(continuation, requests, rowKeyPosition())?.after;
            // A table query `RowKey gt after`, answered in server pages of its own size.
            const rows = all.filter((key) => after === undefined || key > after);
            const pages = Array.from({ length: Math.ceil(rows.length / serverPage) }, (_, i) =>
              rows.slice(i * serverPage, (i + 1) * serverPage),
            );
            const page = await keysetPage(pagesOf(pages, { pages: 0 }), top, requests, (row) => row);
            seen.push(...page.items);
            continuation = page.continuation;
            if (!continuation) break;
          }
          expect(continuation).toBeUndefined();
          expect(seen).toEqual(all);
        },
      ),
      { numRuns: 300 },
    );
  });
});

// The pieces of a move's verification that are pure: the lockstep comparison of two key-ordered streams of
// partition summaries, and the canonical row text (order of columns does not matter, types do).
import fc from 'fast-check';

import '../../support/fastCheck';
import { canonicalRow, mismatches, type PartitionSummary } from '../../../shared/storage/tenantRows';

async function* stream(items: PartitionSummary[]): AsyncGenerator<PartitionSummary> {
  for (const item of items) yield item;
}

const summaries = fc
  .uniqueArray(
    fc.record({
      partitionKey: fc.stringMatching(/^t_[a-f0-9]{1,3}$/),
      rows: fc.integer({ min: 1, max: 3 }),
      digest: fc.constantFrom('a', 'b'),
    }),
    { selector: (s) => s.partitionKey, maxLength: 30 },
  )
  .map((items) => [...items].sort((x, y) => (x.partitionKey < y.partitionKey ? -1 : 1)));

describe('mismatches', () => {
  it('yields exactly the partitions that differ or exist on one side, and reports every summary once', async () => {
    await fc.assert(
      fc.asyncProperty(summaries, summaries, async (source, target) => {
        const seen = { source: [] as string[], target: [] as string[] };
        const found: string[] = [];
        for await (const key of mismatches(
          stream(source),
          stream(target),
          (s) => seen.source.push(s.partitionKey),
          (s) => seen.target.push(s.partitionKey),
        )) {
          found.push(key);
        }
        const byKey = new Map(target.map((t) => [t.partitionKey, t]));
        const expected = new Set<string>();
        for (const s of source) {
          const t = byKey.get(s.partitionKey);
          if (!t || t.rows !== s.rows || t.digest !== s.digest) expected.add(s.partitionKey);
        }
        const sourceKeys = new Set(source.map((s) => s.partitionKey));
        for (const t of target) if (!sourceKeys.has(t.partitionKey)) expected.add(t.partitionKey);
        expect(new Set(found)).toEqual(expected);
        expect(found).toHaveLength(expected.size);
        expect(seen.source).toEqual(source.map((s) => s.partitionKey));
        expect(seen.target).toEqual(target.map((t) => t.partitionKey));
      }),
    );
  });
});

describe('canonicalRow', () => {
  it('ignores the order of columns but not their types or values', () => {
    const a = {
      partitionKey: 'p',
      rowKey: 'r',
      n: { value: '5', type: 'Int32' },
      s: { value: 'x', type: 'String' },
    };
    const b = {
      s: { value: 'x', type: 'String' },
      rowKey: 'r',
      n: { value: '5', type: 'Int32' },
      partitionKey: 'p',
    };
    expect(canonicalRow(a)).toBe(canonicalRow(b));
    expect(canonicalRow(a)).not.toBe(canonicalRow({ ...a, n: { value: '5', type: 'Int64' } }));
    expect(canonicalRow(a)).not.toBe(canonicalRow({ ...a, s: { value: 'y', type: 'String' } }));
  });
});

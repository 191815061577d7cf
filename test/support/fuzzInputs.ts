// Generators of malformed input that fuzz tests share: strings a field should not carry (2 KiB, control
// characters, unicode, characters Table keys refuse), odd JSON values (wrong types, 400 properties, deep
// nesting) and mutations of a valid JSON document (fields dropped, replaced, added).
import fc from 'fast-check';

/** 2 KiB of one character: ASCII, Latin, astral (surrogate pairs), or a character Table keys refuse. */
export const twoKib = fc
  .constantFrom('a', 'é', '😀', '/', '\\', '#', '?', '%')
  .map((c) => c.repeat(2048 / Buffer.byteLength(c)));
export const controls = fc.string({
  unit: fc.integer({ min: 0, max: 0x1f }).map((c) => String.fromCharCode(c)),
  minLength: 1,
});
export const unicode = fc.oneof(
  fc.string({ unit: 'grapheme', maxLength: 30 }),
  fc.constantFrom('Ünïcödé', 'مرحبا', '👩‍👩‍👧‍👦', '\u202eevil', '\ufeffbom', 'ｆｕｌｌ', 'İ', 'ß', '\u0000'),
);
/** Strings a path, query or field might carry that it should not. */
export const oddString: fc.Arbitrary<string> = fc.oneof(
  fc.string({ maxLength: 40 }),
  unicode,
  controls,
  twoKib,
  fc.constantFrom(
    '',
    ' ',
    '.',
    '..',
    '/',
    '\\',
    '#',
    '?',
    '%',
    '%2F',
    '%00',
    'null',
    'undefined',
    '0',
    '-1',
    '\n',
  ),
  fc
    .tuple(
      fc.string({ maxLength: 8 }),
      fc.constantFrom('/', '\\', '#', '?', '\u0000', '\u007f'),
      fc.string({ maxLength: 8 }),
    )
    .map((parts) => parts.join('')),
);

export type OddValue = unknown;
/** 400 properties, the kind of object that makes a validator or a row writer work per key. */
export const wide = fc.constant(Object.fromEntries(Array.from({ length: 400 }, (_, i) => [`p${i}`, i])));
export const deep = fc.integer({ min: 50, max: 500 }).map((depth) => {
  let value: unknown = 'bottom';
  for (let i = 0; i < depth; i++) value = i % 2 ? [value] : { a: value };
  return value;
});
export const oddValue: fc.Arbitrary<OddValue> = fc.oneof(
  fc.constantFrom(null, 0, -1, 1.5, true, false, [], {}, '', [1, 2], 1e308, -0),
  oddString,
  wide,
  deep,
  fc.jsonValue({ maxDepth: 3 }),
);

export type Mutation =
  | { kind: 'drop'; at: number }
  | { kind: 'set'; at: number; value: OddValue }
  | { kind: 'add'; at: number; key: string; value: OddValue };

export const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant('drop' as const), at: fc.nat() }),
  fc.record({ kind: fc.constant('set' as const), at: fc.nat(), value: oddValue }),
  fc.record({
    kind: fc.constant('add' as const),
    at: fc.nat(),
    key: fc.oneof(
      fc.constantFrom('__proto__', 'constructor', 'id', 'type', 'status', 'tenantId', 'eventId', 'reason'),
      oddString,
    ),
    value: oddValue,
  }),
);

type Json = Record<string, unknown> | unknown[];
const isContainer = (value: unknown): value is Json => typeof value === 'object' && value !== null;

/** Every path into a JSON value down to depth 3, the root included (a deep value is mutated near its top). */
function pathsOf(value: unknown, prefix: string[] = []): string[][] {
  if (!isContainer(value) || prefix.length >= 3) return [prefix];
  return [
    prefix,
    ...Object.keys(value).flatMap((key) =>
      pathsOf((value as Record<string, unknown>)[key], [...prefix, key]),
    ),
  ];
}

export function mutate(body: unknown, mutations: readonly Mutation[]): unknown {
  let root: unknown = structuredClone(body);
  for (const m of mutations) {
    const paths = pathsOf(root);
    const path = paths[m.at % paths.length]!;
    if (path.length === 0) {
      if (m.kind === 'set') root = structuredClone(m.value);
      else if (m.kind === 'add' && isContainer(root)) define(root, m.key, m.value);
      continue;
    }
    const parent = path
      .slice(0, -1)
      .reduce<unknown>((node, key) => (node as Record<string, unknown>)[key], root);
    const key = path[path.length - 1]!;
    if (!isContainer(parent)) continue;
    if (m.kind === 'drop') {
      if (Array.isArray(parent)) parent.splice(Number(key), 1);
      else delete (parent as Record<string, unknown>)[key];
    } else if (m.kind === 'set') {
      define(parent, key, m.value);
    } else {
      const target = (parent as Record<string, unknown>)[key];
      define(isContainer(target) && !Array.isArray(target) ? target : parent, m.key, m.value);
    }
  }
  return root;
}

/**
 * An own property even for `__proto__`, so that it reaches the JSON text; a copy of the value, since
 * generated values may be shared between cases.
 */
const define = (target: Json, key: string, value: unknown) =>
  Object.defineProperty(target, key, {
    value: structuredClone(value),
    enumerable: true,
    writable: true,
    configurable: true,
  });

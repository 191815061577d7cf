// Pseudonymisation of a systemLog record's data (SPEC §4): every occurrence of the subject's identifiers, in
// any value or key and inside free text, becomes a per-tenant HMAC token, so the stored row names no one.

export type SystemLogIdentifierKind = 'upn' | 'objectId' | 'email' | 'device';

export interface SystemLogIdentifiers {
  upn?: string;
  objectId?: string;
  email?: string;
  deviceName?: string;
}

/** Callers pass an HMAC keyed per tenant; it is called once per identifier. */
export type PseudonymOf = (kind: SystemLogIdentifierKind, value: string) => string;

/** The text that stands for an identifier in a pseudonymised log: `[upn:3fa2…]`. */
export function pseudonymToken(kind: SystemLogIdentifierKind, hmac: string): string {
  return `[${kind}:${hmac}]`;
}

/** Shorter identifiers would match inside ordinary words. */
const MIN_IDENTIFIER_LENGTH = 3;

const KINDS: readonly [keyof SystemLogIdentifiers, SystemLogIdentifierKind][] = [
  ['upn', 'upn'],
  ['objectId', 'objectId'],
  ['email', 'email'],
  ['deviceName', 'device'],
];

interface Replacement {
  pattern: RegExp;
  token: string;
}

/**
 * A deep copy of `data` in which each identifier, wherever it occurs (any depth, values and keys, compared
 * case-insensitively), is replaced by its token. Numbers, booleans and null are kept.
 */
export function pseudonymiseSystemLog(
  data: Record<string, unknown>,
  identifiers: SystemLogIdentifiers,
  pseudonym: PseudonymOf,
): Record<string, unknown> {
  const replacements = replacementsFor(identifiers, pseudonym);
  if (replacements.length === 0) return copyWith(data, (text) => text) as Record<string, unknown>;
  return copyWith(data, (text) => replaceIdentifiers(text, replacements)) as Record<string, unknown>;
}

function replacementsFor(identifiers: SystemLogIdentifiers, pseudonym: PseudonymOf): Replacement[] {
  const seen = new Set<string>();
  const replacements: (Replacement & { length: number })[] = [];
  for (const [field, kind] of KINDS) {
    const given = identifiers[field];
    const text = given?.trim() ?? '';
    // The same text under two kinds (upn = email) is one identifier: the first kind names it.
    if (text.length < MIN_IDENTIFIER_LENGTH || seen.has(text.toLowerCase())) continue;
    seen.add(text.toLowerCase());
    replacements.push({
      pattern: new RegExp(escapeRegExp(text), 'giu'),
      token: pseudonymToken(kind, pseudonym(kind, given ?? text)),
      length: text.length,
    });
  }
  // Longer first: an e-mail address that contains the UPN is replaced whole, not around a UPN token.
  return replacements.sort((a, b) => b.length - a.length);
}

/**
 * Replaces each identifier in turn, longest first, in the text that earlier tokens left, so no token is
 * ever searched (a device name could otherwise match inside an HMAC).
 */
function replaceIdentifiers(text: string, replacements: readonly Replacement[]): string {
  let parts: { text: string; token: boolean }[] = [{ text, token: false }];
  for (const { pattern, token } of replacements) {
    parts = parts.flatMap((part) => {
      if (part.token) return [part];
      const pieces = part.text.split(pattern);
      if (pieces.length === 1) return [part];
      return pieces.flatMap((piece, i) => {
        const plain = { text: piece, token: false };
        return i === 0 ? [plain] : [{ text: token, token: true }, plain];
      });
    });
  }
  return parts.map((part) => part.text).join('');
}

function copyWith(value: unknown, replace: (text: string) => string): unknown {
  if (typeof value === 'string') return replace(value);
  if (Array.isArray(value)) return value.map((item) => copyWith(item, replace));
  if (value === null || typeof value !== 'object') return value;
  const copy: Record<string, unknown> = {};
  for (const [key, field] of Object.entries(value)) {
    // defineProperty: a key such as `__proto__` stays a key rather than replacing the prototype.
    Object.defineProperty(copy, uniqueKey(copy, replace(key)), {
      value: copyWith(field, replace),
      enumerable: true,
      writable: true,
      configurable: true,
    });
  }
  return copy;
}

/** Two keys that become the same text must not overwrite each other (as in export redaction). */
function uniqueKey(target: Record<string, unknown>, key: string): string {
  if (!Object.hasOwn(target, key)) return key;
  let n = 2;
  while (Object.hasOwn(target, `${key} (${n})`)) n++;
  return `${key} (${n})`;
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}

// Redaction of other people's identifiers in what a package gives the data subject (SPEC §5): the subject
// gets their own data, not their manager's e-mail address or a colleague's object id.
//
// The rule, chosen to over-redact rather than leak:
// - In every string (and every object key), each e-mail address or UPN that is not one of the subject's
//   (compared case-insensitively) becomes `[redacted]`; the rest of the string stays.
// - GUIDs are record and device ids too, so they are redacted only where a key names a person: a key whose
//   words end with a person word (`user`, `owner`, `manager`, `contact`, `recipient`, `sender`, `actor`, ...)
//   or `<verb>ed by` / `assigned to`, optionally followed by an identifier word (`Id`, `ObjectId`, `Upn`,
//   `Name`, `DisplayName`, `Email`, ...). `primaryUserId`, `managerUpn`, `createdBy`, `assignedTo` name a
//   person; `userAgent`, `usersCount`, `ownerType`, `deviceId` do not.
// - Under a person key, a string or number is replaced whole (so names go too) unless it is one of the
//   subject's identifiers. An object there is a person: its identifying fields (`id`, `upn`, `displayName`,
//   `mail`, ..., whatever they hold) are replaced and its other fields (`type`, `department`) kept, unless
//   one of its identifying fields is the subject's, which makes it the subject. Arrays are taken item by item.
// A person key holding the subject's display name is redacted too: names are not identifiers we can match.

export interface SubjectIdentifiers {
  upn?: string;
  objectId?: string;
  email?: string;
}

/** The identifiers that stay readable, normalised (trimmed, lower case): a set, or a richer matcher. */
export interface OwnIdentifiers {
  has(identifier: string): boolean;
}

export const REDACTED = '[redacted]';

/** Conservative local part (no `=`, `:` or `/`), so `to=adele@contoso.com` still yields Adele's own address. */
const EMAIL = /[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*/g;

const PERSON_WORDS = new Set([
  'user',
  'username',
  'owner',
  'manager',
  'contact',
  'recipient',
  'sender',
  'actor',
  'author',
  'assignee',
  'approver',
  'reviewer',
  'requester',
  'requestor',
  'member',
]);

/** Words that, at the end of a key, say which identifier of a person the value is. */
const IDENTIFIER_SUFFIX_WORDS = new Set([
  'id',
  'ids',
  'oid',
  'object',
  'upn',
  'principal',
  'name',
  'names',
  'display',
  'email',
  'emails',
  'mail',
  'address',
  'addresses',
  'phone',
  'employee',
  'number',
]);

/** Fields of an object under a person key that identify that person. */
const IDENTIFYING_FIELDS = new Set([
  'id',
  'oid',
  'objectid',
  'upn',
  'userprincipalname',
  'principalname',
  'name',
  'displayname',
  'givenname',
  'surname',
  'firstname',
  'lastname',
  'fullname',
  'mail',
  'email',
  'emailaddress',
  'address',
  'phone',
  'mobilephone',
  'phonenumber',
  'employeeid',
]);

/**
 * A deep copy of `value` with other people's identifiers replaced by `[redacted]` (rule above). Several
 * identifier sets may be given when the subject is known under more than one (a record's own subject).
 */
export function redactOtherPeople(
  value: unknown,
  subject: SubjectIdentifiers | readonly SubjectIdentifiers[] | OwnIdentifiers,
): unknown {
  const own = isMatcher(subject) ? subject : ownIdentifiers(subject);
  return redactValue(value, own, 'plain');
}

const isMatcher = (value: unknown): value is OwnIdentifiers =>
  typeof (value as { has?: unknown }).has === 'function';

/** Whether a key names a person (exported for tests and for readers of the rule). */
export function namesPerson(key: string): boolean {
  // Records of one category repeat the same keys: classify each key once (bounded, keys are few).
  let known = PERSON_KEY_CACHE.get(key);
  if (known === undefined) {
    known = classifyKey(key);
    if (PERSON_KEY_CACHE.size >= 10_000) PERSON_KEY_CACHE.clear();
    PERSON_KEY_CACHE.set(key, known);
  }
  return known;
}

const PERSON_KEY_CACHE = new Map<string, boolean>();

function classifyKey(key: string): boolean {
  const words = key
    .replace(/([a-z0-9])([A-Z])/g, '$1 $2')
    .toLowerCase()
    .split(/[^a-z0-9]+/)
    .filter((word) => word.length > 0);
  while (words.length > 1 && IDENTIFIER_SUFFIX_WORDS.has(words[words.length - 1] ?? '')) words.pop();
  const last = words[words.length - 1] ?? '';
  const previous = words[words.length - 2] ?? '';
  if (PERSON_WORDS.has(last) || (last.endsWith('s') && PERSON_WORDS.has(last.slice(0, -1)))) return true;
  return (last === 'by' && previous.endsWith('ed')) || (last === 'to' && previous === 'assigned');
}

/**
 * `plain`: nothing known; `person`: the value is a person, under a person key; `identifier`: the value
 * identifies a person other than the subject (every string and number in it is redacted unless it is one of
 * the subject's identifiers).
 */
type Context = 'plain' | 'person' | 'identifier';

function redactValue(value: unknown, own: OwnIdentifiers, context: Context): unknown {
  if (typeof value === 'string') {
    if (context === 'plain') return redactEmails(value, own);
    return own.has(normalize(value)) ? value : REDACTED;
  }
  if (typeof value === 'number' || typeof value === 'bigint') return context === 'plain' ? value : REDACTED;
  if (Array.isArray(value)) return value.map((item) => redactValue(item, own, context));
  if (value instanceof Date) return redactValue(value.toISOString(), own, context);
  if (value === null || typeof value !== 'object') return value;

  const entries = Object.entries(value as Record<string, unknown>);
  // A person object that carries one of the subject's identifiers is the subject.
  const isOtherPerson =
    context === 'person' &&
    !entries.some(
      ([key, field]) =>
        IDENTIFYING_FIELDS.has(key.toLowerCase()) && typeof field === 'string' && own.has(normalize(field)),
    );
  const copy: Record<string, unknown> = {};
  for (const [key, field] of entries) {
    const fieldContext: Context =
      context === 'identifier' || (isOtherPerson && IDENTIFYING_FIELDS.has(key.toLowerCase()))
        ? 'identifier'
        : namesPerson(key)
          ? 'person'
          : 'plain';
    copy[uniqueKey(copy, redactEmails(key, own))] = redactValue(field, own, fieldContext);
  }
  return copy;
}

function redactEmails(text: string, own: OwnIdentifiers): string {
  if (!text.includes('@')) return text;
  return text.replace(EMAIL, (address) => (own.has(address.toLowerCase()) ? address : REDACTED));
}

/** Two keys that redact to the same text must not overwrite each other. */
function uniqueKey(target: Record<string, unknown>, key: string): string {
  if (!Object.hasOwn(target, key)) return key;
  let n = 2;
  while (Object.hasOwn(target, `${key} (${n})`)) n++;
  return `${key} (${n})`;
}

/** The identifiers redaction keeps (normalised), to work out once for many values of the same subject. */
export function ownIdentifiers(
  subject: SubjectIdentifiers | readonly SubjectIdentifiers[],
): ReadonlySet<string> {
  const own = new Set<string>();
  for (const identifiers of Array.isArray(subject) ? subject : [subject as SubjectIdentifiers]) {
    for (const identifier of [identifiers.upn, identifiers.objectId, identifiers.email]) {
      if (identifier && identifier.trim().length > 0) own.add(normalize(identifier));
    }
  }
  return own;
}

const normalize = (identifier: string): string => identifier.trim().toLowerCase();

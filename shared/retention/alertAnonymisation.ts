// What remains of an alert 180 days after it occurred (SPEC §6): an explicit allow-list of fields that name
// no one, each value checked for its kind, so the anonymised alert names and links to no one.

/** How a kept field's value is checked; a value that fails is dropped. */
export type AnonymousAlertCheck = 'label' | 'labels' | 'title' | 'time' | 'count' | 'techniques';

export interface AnonymousAlertField {
  /** The top-level field name, matched exactly (Defender for Endpoint and Graph security alert v2 names). */
  readonly name: string;
  readonly check: AnonymousAlertCheck;
  /** Why the field names no one. */
  readonly reason: string;
}

/** The checks in words, for the retention policy and the docs. */
export const ANONYMOUS_ALERT_CHECKS: Readonly<Record<AnonymousAlertCheck, string>> = {
  label:
    'a short value (at most 64 characters) of letters, digits, spaces and _ - . only, with no IP-like digit ' +
    'groups, no run of 5 digits, nothing shaped like a GUID, SID or host name, and not equal to any ' +
    'identifier found elsewhere in the alert',
  labels: 'a list of labels; items that fail the label check are dropped',
  title:
    'at most 256 characters, with no e-mail address, UPN, DOMAIN\\user, IP address, GUID, SID, URL, path, ' +
    'host name, long number or any identifier (or word of one) found anywhere in the alert; otherwise the ' +
    'category stands in for it',
  time: 'an ISO 8601 date-time (YYYY-MM-DDThh:mm[:ss[.fff]][Z|±hh:mm]) naming a real calendar moment',
  count: 'a non-negative safe integer',
  techniques: 'a list of MITRE ATT&CK technique ids (T1234 or T1234.001); other items are dropped',
};

/** The allow-list: the only fields an anonymised alert keeps, in the order it keeps them. */
export const ANONYMOUS_ALERT_FIELDS: readonly AnonymousAlertField[] = [
  { name: 'severity', check: 'label', reason: 'an enum (informational … high)' },
  {
    name: 'title',
    check: 'title',
    reason: 'the detection rule’s name; kept only when it contains nothing that identifies anyone',
  },
  { name: 'category', check: 'label', reason: 'the kill-chain category, an enum' },
  { name: 'categories', check: 'labels', reason: 'kill-chain categories, enums' },
  { name: 'detectionSource', check: 'label', reason: 'which detector raised it, an enum' },
  { name: 'serviceSource', check: 'label', reason: 'which Defender product raised it, an enum' },
  {
    // Doubtful: a free string in both APIs, but it names malware (Emotet, Mimikatz), not people; the label
    // check drops anything shaped like an identifier and anything also found in a personal field.
    name: 'threatFamilyName',
    check: 'label',
    reason: 'the malware family (Emotet, Mimikatz), not a person',
  },
  { name: 'mitreTechniques', check: 'techniques', reason: 'MITRE ATT&CK technique ids' },
  {
    // Doubtful: workflow state rather than detection, but an enum that does not say who handled it.
    name: 'status',
    check: 'label',
    reason: 'the workflow state, an enum (new, inProgress, resolved)',
  },
  {
    name: 'classification',
    check: 'label',
    reason: 'true or false positive, an enum; says nothing about who',
  },
  {
    // Doubtful: values such as securityPersonnel say a tester did it, but not which one.
    name: 'determination',
    check: 'label',
    reason: 'what the activity was (malware, securityTesting, …), an enum',
  },
  { name: 'alertCreationTime', check: 'time', reason: 'Defender for Endpoint: when the alert was created' },
  { name: 'createdDateTime', check: 'time', reason: 'Graph: when the alert was created' },
  { name: 'firstEventTime', check: 'time', reason: 'Defender for Endpoint: first triggering event' },
  { name: 'firstActivityDateTime', check: 'time', reason: 'Graph: first triggering activity' },
  { name: 'lastEventTime', check: 'time', reason: 'Defender for Endpoint: last triggering event' },
  { name: 'lastActivityDateTime', check: 'time', reason: 'Graph: last triggering activity' },
  { name: 'lastUpdateTime', check: 'time', reason: 'Defender for Endpoint: last update' },
  { name: 'lastUpdateDateTime', check: 'time', reason: 'Graph: last update' },
  { name: 'resolvedTime', check: 'time', reason: 'Defender for Endpoint: when it was resolved' },
  { name: 'resolvedDateTime', check: 'time', reason: 'Graph: when it was resolved' },
  // Neither API puts counts on an alert; a sender that adds them uses these names. A count names no one.
  { name: 'eventCount', check: 'count', reason: 'how many events triggered it' },
  { name: 'evidenceCount', check: 'count', reason: 'how many pieces of evidence it had (not the evidence)' },
  { name: 'impactedDeviceCount', check: 'count', reason: 'how many devices, not which' },
  { name: 'impactedUserCount', check: 'count', reason: 'how many users, not which' },
];
// Dropped on purpose, among others: id, providerAlertId, incidentId, investigationId, detectorId,
// alertPolicyId, tenantId, aadTenantId (ids link the rest back to a person's records); machineId,
// computerDnsName, relatedUser, loggedOnUsers, rbacGroupName, assignedTo, actorDisplayName (they name
// someone or something of someone's); description, recommendedAction(s), comments, additionalData,
// customDetails, systemTags (free text); evidence (accounts, devices, IPs, paths, command lines);
// alertWebUrl, incidentWebUrl (ids in URLs); threatName, threatDisplayName, productName, investigationState
// (not needed for what remains, and threatName is free-form).

/** The anonymised alert: allow-listed top-level fields whose values pass their check; nothing else. */
export function anonymiseAlert(data: Record<string, unknown>): Record<string, unknown> {
  const identifiers = collectIdentifiers(data);
  const kept: Record<string, unknown> = {};
  let title: string | undefined;
  for (const field of ANONYMOUS_ALERT_FIELDS) {
    if (!Object.hasOwn(data, field.name)) continue;
    const value = keptValue(field.check, data[field.name], identifiers);
    if (value === undefined) continue;
    if (field.check === 'title') title = value as string;
    kept[field.name] = value;
  }
  // A title that named someone gives way to the category, which says what kind of alert it was.
  if (typeof data.title === 'string' && title === undefined && typeof kept.category === 'string') {
    kept.title = kept.category;
  }
  return kept;
}

function keptValue(check: AnonymousAlertCheck, value: unknown, identifiers: Identifiers): unknown {
  switch (check) {
    case 'label':
      return isLabel(value, identifiers) ? value : undefined;
    case 'labels':
      return keptItems(value, (item) => isLabel(item, identifiers));
    case 'techniques':
      return keptItems(value, (item) => typeof item === 'string' && TECHNIQUE.test(item));
    case 'title':
      return isAnonymousTitle(value, identifiers) ? value : undefined;
    case 'time':
      return typeof value === 'string' && isDateTime(value) ? value : undefined;
    case 'count':
      return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0 ? value : undefined;
  }
}

function keptItems(value: unknown, keep: (item: unknown) => boolean): unknown[] | undefined {
  if (!Array.isArray(value)) return undefined;
  const items = value.filter(keep);
  return items.length > 0 ? items : undefined;
}

const TECHNIQUE = /^T\d{4}(\.\d{3})?$/;
const LABEL = /^[A-Za-z0-9 _.-]{1,64}$/;
/** Three digit groups (an IPv4 address, a phone number, a date) or five digits in a row (an account number). */
const IDENTIFYING_DIGITS = /\d+(?:[._ -]+\d+){2,}|\d{5,}/;
/**
 * A dotted name of two or more labels, the last one of two characters or more and starting with a letter:
 * hosts, domains, user names (`Mimikatz.D` is a threat variant; `1.0` a version).
 */
const DOTTED_NAME = /(?:[\p{L}\p{N}](?:[\p{L}\p{N}_-]*[\p{L}\p{N}])?\.)+\p{L}[\p{L}\p{N}-]*[\p{L}\p{N}]/gu;

function isLabel(value: unknown, identifiers: Identifiers): value is string {
  if (typeof value !== 'string' || !LABEL.test(value) || IDENTIFYING_DIGITS.test(value)) return false;
  if (hasIdentifierShape(value) || matches(DOTTED_NAME, value).length > 0) return false;
  // An enum value is a whole word; it only names someone if it is one of the alert's identifiers.
  const lower = value.toLowerCase();
  return !identifiers.values.has(lower) && !identifiers.words.has(lower);
}

function isAnonymousTitle(value: unknown, identifiers: Identifiers): value is string {
  if (typeof value !== 'string' || value.trim().length === 0 || value.length > 256) return false;
  // A backslash is a path or DOMAIN\user; an @ an address or handle.
  if (hasIdentifierShape(value) || IDENTIFYING_DIGITS.test(value) || /[\\@]/.test(value)) return false;
  if (matches(DOTTED_NAME, value).some((name) => !isFileName(name))) return false;
  const lower = value.toLowerCase();
  for (const identifier of identifiers.values) if (lower.includes(identifier)) return false;
  for (const word of identifiers.words) if (lower.includes(word)) return false;
  return true;
}

/**
 * Titles name the files they are about (`mimikatz.exe`), which identify no one; any other dotted name
 * (`adele.vance`, `contoso-adele-01.contoso.local`) may be a person or their device.
 */
const FILE_EXTENSIONS = new Set(
  [
    'exe dll sys scr cpl ocx msi msp lnk bat cmd ps1 psm1 psd1 vbs vbe js jse wsf hta jar py sh elf bin',
    'iso img vhd vhdx zip rar 7z cab gz tar doc docx docm dot dotm xls xlsx xlsm xlsb ppt pptx pptm pdf',
    'rtf txt csv htm html xml json',
  ].flatMap((line) => line.split(' ')),
);

function isFileName(dottedName: string): boolean {
  const labels = dottedName.split('.');
  return labels.length === 2 && FILE_EXTENSIONS.has((labels[1] ?? '').toLowerCase());
}

const DATE_TIME =
  /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(?:\.\d{1,9})?)?(?:Z|[+-](\d{2}):(\d{2}))?$/;

function isDateTime(value: string): boolean {
  const parts = DATE_TIME.exec(value);
  if (!parts) return false;
  const [year, month, day, hour, minute, second, offsetHours, offsetMinutes] = parts
    .slice(1)
    .map((part) => (part === undefined ? 0 : Number(part)));
  if (year === undefined || month === undefined || day === undefined) return false;
  const leapYear = year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
  const daysInMonth = [31, leapYear ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month - 1] ?? 0;
  return (
    month >= 1 &&
    month <= 12 &&
    day >= 1 &&
    day <= daysInMonth &&
    (hour ?? 0) <= 23 &&
    (minute ?? 0) <= 59 &&
    (second ?? 0) <= 59 &&
    (offsetHours ?? 0) <= 14 &&
    (offsetMinutes ?? 0) <= 59
  );
}

// --- Identifiers found anywhere in the alert -------------------------------------------------------------

interface Identifiers {
  /** Whole identifiers, lower case, 3 characters or more. */
  readonly values: Set<string>;
  /** Their words of 3 characters or more, lower case: `adele`, `vance`, `contoso`. */
  readonly words: Set<string>;
}

const EMAIL = /[\p{L}\p{N}._%+'-]+@[\p{L}\p{N}-]+(?:\.[\p{L}\p{N}-]+)*/gu;
/** CONTOSO\adele.vance, but not the folders of a path (C:\Windows\System32). */
const DOMAIN_USER = /(?<![\\/:\p{L}\p{N}._$-])[\p{L}\p{N}._-]+\\[\p{L}\p{N}._$-]+(?![\\\p{L}\p{N}._$-])/gu;
const IPV4 = /(?<!\d)(?:\d{1,3}\.){3}\d{1,3}(?!\d)/g;
const IPV6_CANDIDATE = /(?<![0-9a-z:.])[0-9a-f]*:[0-9a-f:.]*(?![0-9a-z])/gi;
const GUID = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/gi;
const SID = /S-1-\d+(?:-\d+)+/gi;
const URL = /[a-z][a-z0-9+.-]*:\/\/[^\s"'<>]+/gi;
/** The profile folder in a path names its user: C:\Users\adele.vance\…, /home/adele/…. */
const PROFILE_FOLDER = /[\\/](?:users|home|documents and settings)[\\/]+([^\\/\s"']+)/gi;

/** Key words that say a field holds (or is) an account, person, device, address or name. */
const IDENTIFYING_KEY_WORDS = new Set([
  'account',
  'accounts',
  'user',
  'users',
  'username',
  'device',
  'devices',
  'machine',
  'machines',
  'computer',
  'computers',
  'host',
  'hosts',
  'hostname',
  'ip',
  'ips',
  'ipv4',
  'ipv6',
  'upn',
  'principal',
  'sid',
  'mail',
  'email',
  'domain',
  'owner',
  'actor',
  'person',
  'assigned',
  'assignee',
  'author',
  'sender',
  'recipient',
]);

/**
 * Domain suffixes name no one, and as title words they would hide every `command` and `network`. Suffixes
 * that are also given names (Lan, Edu) are left out.
 */
const DOMAIN_SUFFIX_WORDS = new Set(['com', 'net', 'org', 'gov', 'local', 'internal', 'onmicrosoft', 'www']);

function collectIdentifiers(data: Record<string, unknown>): Identifiers {
  const identifiers: Identifiers = { values: new Set(), words: new Set() };
  const add = (identifier: string): void => {
    const lower = identifier.trim().toLowerCase();
    if (lower.length >= 3) identifiers.values.add(lower);
    for (const word of lower.split(/[^\p{L}\p{N}]+/u)) {
      if (word.length >= 3 && !DOMAIN_SUFFIX_WORDS.has(word)) identifiers.words.add(word);
    }
  };
  const visit = (value: unknown, underIdentifyingKey: boolean): void => {
    if (typeof value === 'string') {
      if (underIdentifyingKey) add(value);
      identifierShapes(value).forEach(add);
    } else if (Array.isArray(value)) {
      for (const item of value) visit(item, underIdentifyingKey);
    } else if (value !== null && typeof value === 'object') {
      for (const [key, field] of Object.entries(value)) {
        // OData annotations name schema types (`#microsoft.graph.security.userEvidence`), not people.
        if (key.startsWith('@odata.')) continue;
        identifierShapes(key).forEach(add);
        visit(field, underIdentifyingKey || isIdentifyingKey(key));
      }
    }
  };
  visit(data, false);
  return identifiers;
}

/**
 * Whether a key says its value is (or belongs to) an account, person, device or address. `name` counts
 * unless it names a thing: `fileName`, `processName` and `threatName` are what alerts are about, and
 * counting them would hide nearly every title; paths still give away the user's profile folder.
 */
function isIdentifyingKey(key: string): boolean {
  const words = key
    .replace(/([a-z0-9])([A-Z])/g, '$1 $2')
    .replace(/([A-Z]+)([A-Z][a-z])/g, '$1 $2')
    .toLowerCase()
    .split(/[^a-z0-9]+/);
  return words.some((word, i) =>
    word === 'name' || word === 'names'
      ? !THING_WORDS.has(words[i - 1] ?? '')
      : IDENTIFYING_KEY_WORDS.has(word),
  );
}

/** Words before `name` that make it the name of a thing, not of a person or device. */
const THING_WORDS = new Set([
  'file',
  'process',
  'image',
  'threat',
  'family',
  'malware',
  'product',
  'policy',
  'rule',
  'detector',
  'registry',
  'value',
  'app',
  'application',
  'service',
  'software',
  'vendor',
  'publisher',
  'category',
  'alert',
]);

/** Every part of `text` shaped like an identifier, whatever field it is in. */
function identifierShapes(text: string): string[] {
  return [
    ...matches(EMAIL, text),
    ...matches(DOMAIN_USER, text),
    ...matches(IPV4, text),
    ...matches(IPV6_CANDIDATE, text).filter(isIpv6),
    ...matches(GUID, text),
    ...matches(SID, text),
    ...matches(URL, text),
    ...matches(DOTTED_NAME, text).filter((name) => !isFileName(name)),
    ...Array.from(text.matchAll(PROFILE_FOLDER), (match) => match[1] ?? ''),
  ];
}

/** Whether `text` holds an e-mail address, DOMAIN\user, IP address, GUID, SID, URL or profile path. */
function hasIdentifierShape(text: string): boolean {
  return (
    matches(EMAIL, text).length > 0 ||
    matches(DOMAIN_USER, text).length > 0 ||
    matches(IPV4, text).length > 0 ||
    matches(IPV6_CANDIDATE, text).some(isIpv6) ||
    matches(GUID, text).length > 0 ||
    matches(SID, text).length > 0 ||
    matches(URL, text).length > 0 ||
    matches(PROFILE_FOLDER, text).length > 0
  );
}

/** A compressed (`fe80::1`) or full (eight groups) IPv6 address; `10:15:00` is a time, not an address. */
function isIpv6(candidate: string): boolean {
  return /[0-9a-f]/i.test(candidate) && (candidate.includes('::') || candidate.split(':').length === 8);
}

function matches(pattern: RegExp, text: string): string[] {
  return Array.from(text.matchAll(pattern), (match) => match[0]);
}

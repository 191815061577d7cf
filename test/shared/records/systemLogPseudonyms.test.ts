import { randomBytes } from 'node:crypto';

import fc from 'fast-check';

import { hmacWith } from '../../../shared/crypto/pseudonymizer';
import {
  pseudonymiseSystemLog,
  pseudonymToken,
  type SystemLogIdentifierKind,
} from '../../../shared/records/systemLogPseudonyms';

const TENANT_KEY = randomBytes(32);
const hmac = (kind: SystemLogIdentifierKind, value: string): string => hmacWith(TENANT_KEY, kind, value);

const ADELE = {
  upn: 'adele.vance@contoso.com',
  objectId: '4f1d3a52-8c1e-4b7a-9a44-5d2c0e6b7a01',
  email: 'adele.vance@contoso.de',
  deviceName: 'CONTOSO-ADELE-01',
};
const UPN = pseudonymToken('upn', hmac('upn', ADELE.upn));
const OBJECT_ID = pseudonymToken('objectId', hmac('objectId', ADELE.objectId));
const EMAIL = pseudonymToken('email', hmac('email', ADELE.email));
const DEVICE = pseudonymToken('device', hmac('device', ADELE.deviceName));

describe('pseudonymiseSystemLog', () => {
  it("replaces the UPN in the demo tenant's enrollment message by its HMAC token", () => {
    const data = { message: 'Enrollment sync completed for adele.vance@contoso.com' };
    const pseudonymised = pseudonymiseSystemLog(data, { upn: 'adele.vance@contoso.com' }, hmac);
    expect(pseudonymised).toEqual({ message: `Enrollment sync completed for ${UPN}` });
    expect(UPN).toMatch(/^\[upn:[0-9a-f]{32}\]$/);
    expect(data.message).toBe('Enrollment sync completed for adele.vance@contoso.com');
  });

  it('replaces identifiers whatever their case', () => {
    const data = {
      message: 'ADELE.VANCE@CONTOSO.COM signed in on contoso-adele-01 as Adele.Vance@Contoso.com',
    };
    expect(pseudonymiseSystemLog(data, ADELE, hmac)).toEqual({
      message: `${UPN} signed in on ${DEVICE} as ${UPN}`,
    });
  });

  it('replaces identifiers inside nested arrays and objects, and in keys', () => {
    const data = {
      sync: {
        attempts: [
          { user: 'adele.vance@contoso.com', ok: false, code: 409 },
          { user: 'adele.vance@contoso.com', ok: true, code: null },
        ],
        perUser: { 'adele.vance@contoso.com': { devices: ['CONTOSO-ADELE-01'] } },
      },
    };
    expect(pseudonymiseSystemLog(data, ADELE, hmac)).toEqual({
      sync: {
        attempts: [
          { user: UPN, ok: false, code: 409 },
          { user: UPN, ok: true, code: null },
        ],
        perUser: { [UPN]: { devices: [DEVICE] } },
      },
    });
  });

  it('replaces the object id inside a path', () => {
    const data = { request: `GET /beta/users/${ADELE.objectId.toUpperCase()}/managedDevices?$top=10` };
    expect(pseudonymiseSystemLog(data, ADELE, hmac)).toEqual({
      request: `GET /beta/users/${OBJECT_ID}/managedDevices?$top=10`,
    });
  });

  it('replaces the device name in free text', () => {
    const data = { message: 'Compliance evaluated on CONTOSO-ADELE-01: BitLocker on, Defender current.' };
    expect(pseudonymiseSystemLog(data, { deviceName: ADELE.deviceName }, hmac)).toEqual({
      message: `Compliance evaluated on ${DEVICE}: BitLocker on, Defender current.`,
    });
  });

  it('makes one token of an address that is both UPN and e-mail, and asks for one pseudonym', () => {
    const pseudonym = jest.fn(hmac);
    const data = { message: 'Mail for adele.vance@contoso.com delivered' };
    expect(
      pseudonymiseSystemLog(data, { upn: ADELE.upn, email: 'Adele.Vance@contoso.com' }, pseudonym),
    ).toEqual({
      message: `Mail for ${UPN} delivered`,
    });
    expect(pseudonym.mock.calls).toEqual([['upn', ADELE.upn]]);
  });

  it('replaces an e-mail address containing the UPN whole, before the UPN', () => {
    const upn = 'adele@contoso.com';
    const email = 'adele@contoso.com.au';
    const data = { message: 'Forwarded from adele@contoso.com.au to adele@contoso.com' };
    expect(pseudonymiseSystemLog(data, { upn, email }, hmac)).toEqual({
      message: `Forwarded from ${pseudonymToken('email', hmac('email', email))} to ${pseudonymToken('upn', hmac('upn', upn))}`,
    });
  });

  it("keeps UPN and e-mail apart when they share only the UPN's local part", () => {
    const data = { message: 'adele.vance@contoso.de is the alias of adele.vance@contoso.com' };
    expect(pseudonymiseSystemLog(data, ADELE, hmac)).toEqual({ message: `${EMAIL} is the alias of ${UPN}` });
  });

  it('never searches inside a token, even for an identifier that its HMAC contains', () => {
    const pseudonym = (kind: SystemLogIdentifierKind): string => (kind === 'upn' ? 'abc123' : 'fff');
    const data = { message: 'adele@contoso.com on abc' };
    expect(pseudonymiseSystemLog(data, { upn: 'adele@contoso.com', deviceName: 'abc' }, pseudonym)).toEqual({
      message: '[upn:abc123] on [device:fff]',
    });
  });

  it('treats regular expression characters in identifiers as plain text', () => {
    const upn = 'a+b@contoso.com';
    const deviceName = 'PC(1)*[x]$';
    const data = { message: 'a+b@contoso.com, aab@contoso.com, ab@contoso.com on PC(1)*[x]$ and PC1x' };
    expect(pseudonymiseSystemLog(data, { upn, deviceName }, hmac)).toEqual({
      message: `${pseudonymToken('upn', hmac('upn', upn))}, aab@contoso.com, ab@contoso.com on ${pseudonymToken('device', hmac('device', deviceName))} and PC1x`,
    });
  });

  it('ignores blank identifiers and identifiers shorter than 3 characters', () => {
    const pseudonym = jest.fn(hmac);
    const data = { message: 'pc ab   a' };
    expect(
      pseudonymiseSystemLog(data, { upn: '   ', objectId: 'ab', email: '', deviceName: 'pc' }, pseudonym),
    ).toEqual(data);
    expect(pseudonym).not.toHaveBeenCalled();
  });

  it('calls the pseudonym once per identifier, with the identifier as given, not once per occurrence', () => {
    const pseudonym = jest.fn(hmac);
    const data = { a: ADELE.upn, b: [ADELE.upn, ADELE.upn.toUpperCase()], [ADELE.upn]: ADELE.deviceName };
    pseudonymiseSystemLog(data, { upn: ADELE.upn, deviceName: ' CONTOSO-ADELE-01 ' }, pseudonym);
    expect(pseudonym.mock.calls).toEqual([
      ['upn', ADELE.upn],
      ['device', ' CONTOSO-ADELE-01 '],
    ]);
  });

  it('keeps numbers, booleans and null as they are', () => {
    const data = { count: 3, ratio: 0.5, ok: true, failed: false, reason: null, list: [1, null, 'x'] };
    expect(pseudonymiseSystemLog(data, ADELE, hmac)).toEqual(data);
  });

  it('keeps every value of keys that become the same text, suffixing the later keys', () => {
    const data = { 'adele.vance@contoso.com': 1, 'ADELE.VANCE@CONTOSO.COM': 2, [`${UPN} (2)`]: 3 };
    expect(pseudonymiseSystemLog(data, ADELE, hmac)).toEqual({
      [UPN]: 1,
      [`${UPN} (2)`]: 2,
      [`${UPN} (2) (2)`]: 3,
    });
  });

  it('keeps a key named __proto__ as a key', () => {
    const data = JSON.parse('{"__proto__": {"user": "adele.vance@contoso.com"}}') as Record<string, unknown>;
    const pseudonymised = pseudonymiseSystemLog(data, ADELE, hmac);
    expect(Object.getPrototypeOf(pseudonymised)).toBe(Object.prototype);
    expect(Object.keys(pseudonymised)).toEqual(['__proto__']);
    expect(Object.getOwnPropertyDescriptor(pseudonymised, '__proto__')?.value).toEqual({ user: UPN });
  });
});

// --- Property ----------------------------------------------------------------------------------------------

/** Text that cannot hold or complete an identifier: none of the characters identifiers are made of. */
const filler = fc.string({
  unit: fc.constantFrom(' ', ',', ';', '!', '?', '/', '(', ')', '#', 'é'),
  maxLength: 6,
});
const letters = fc.stringMatching(/^[a-z][a-z0-9]{1,6}$/);
const identifiersArb = fc
  .record({
    upn: fc.tuple(letters, letters).map(([user, domain]) => `${user}@${domain}.com`),
    objectId: fc.uuid(),
    email: fc.tuple(letters, letters).map(([user, domain]) => `${user}.mail@${domain}.org`),
    deviceName: fc.tuple(letters, fc.nat({ max: 99 })).map(([name, n]) => `${name.toUpperCase()}-PC-${n}`),
  })
  // Non-overlapping: no identifier holds another (the UPN inside the e-mail address is a test of its own).
  .filter((ids) => {
    const all = Object.values(ids).map((id) => id.toLowerCase());
    return all.every((a, i) => all.every((b, j) => i === j || !a.includes(b)));
  });

type Kind = keyof typeof KIND_OF;
const KIND_OF = { upn: 'upn', objectId: 'objectId', email: 'email', deviceName: 'device' } as const;

type Part = { splice: false; text: string } | { splice: true; kind: Kind; upper: boolean[] };

/** The parts of a string: filler, and identifiers spliced in, each with random casing. */
const parts: fc.Arbitrary<Part[]> = fc.array(
  fc.oneof(
    filler.map((text): Part => ({ splice: false, text })),
    fc
      .tuple(
        fc.constantFrom<Kind>('upn', 'objectId', 'email', 'deviceName'),
        fc.array(fc.boolean(), { maxLength: 40 }),
      )
      .map(([kind, upper]): Part => ({ splice: true, kind, upper })),
  ),
  { maxLength: 5 },
);

describe('pseudonymiseSystemLog, for any log', () => {
  it('leaves none of the identifiers and makes one token per occurrence', () => {
    fc.assert(
      fc.property(
        identifiersArb,
        fc.jsonValue({ maxDepth: 3 }),
        fc.array(fc.tuple(parts, fc.nat(), fc.boolean()), { maxLength: 6 }),
        (identifiers, base, strings) => {
          let made = 0;
          const render = (stringParts: Part[]): string =>
            stringParts
              .map((part) => {
                if (!part.splice) return part.text;
                made++;
                const id = identifiers[part.kind];
                // A filler character on each side, so two splices never run into each other.
                return ` ${[...id].map((c, i) => (part.upper[i] ? c.toUpperCase() : c.toLowerCase())).join('')} `;
              })
              .join('');
          // Base data without letters and digits cannot hold an identifier by chance.
          const data: Record<string, unknown> = { base: stripIdentifierCharacters(base) };
          const containers: Record<string, unknown>[] = [data];
          // Each string goes into a field or a key of the data or of an object an earlier key made.
          strings.forEach(([stringParts, at, asKey], n) => {
            const text = render(stringParts);
            const container = containers[at % containers.length]!;
            if (asKey) {
              const inner: Record<string, unknown> = { n };
              container[`${text}#${n}`] = inner;
              containers.push(inner);
            } else {
              container[`field${n}`] = [text, n];
            }
          });
          const output = JSON.stringify(pseudonymiseSystemLog(data, identifiers, hmac)).toLowerCase();
          for (const id of Object.values(identifiers)) expect(output).not.toContain(id.toLowerCase());
          const tokens = output.match(/\[(upn|objectid|email|device):[0-9a-f]{32}\]/g) ?? [];
          expect(tokens.length).toBe(made);
          const expected = Object.entries(KIND_OF).map(([field, kind]) =>
            pseudonymToken(kind, hmac(kind, identifiers[field as Kind])).toLowerCase(),
          );
          for (const token of tokens) expect(expected).toContain(token);
        },
      ),
    );
  });
});

function stripIdentifierCharacters(value: unknown): unknown {
  if (typeof value === 'string') return value.replace(/[\p{L}\p{N}.@\-[\]]/gu, '_');
  if (Array.isArray(value)) return value.map(stripIdentifierCharacters);
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(
      Object.entries(value).map(([key, field]) => [
        stripIdentifierCharacters(key),
        stripIdentifierCharacters(field),
      ]),
    );
  }
  return value;
}

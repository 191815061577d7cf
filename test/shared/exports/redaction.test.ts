import { namesPerson, REDACTED, redactOtherPeople } from '../../../shared/exports/redaction';

const ADELE = {
  upn: 'adele@contoso.com',
  objectId: '6e2f1c9a-3b1e-4d7a-9a1c-1f2e3d4c5b6a',
  email: 'adele.vance@contoso.de',
};
const BOB_OID = 'b0b00000-1111-4222-8333-444455556666';
const DEVICE_ID = 'd0d0d0d0-aaaa-4bbb-8ccc-dddddddddddd';

describe('redactOtherPeople', () => {
  it('replaces other e-mail addresses and UPNs inside strings and keeps the rest of the text', () => {
    expect(redactOtherPeople('Forwarded by bob@contoso.com to carol@fabrikam.co.uk.', ADELE)).toBe(
      `Forwarded by ${REDACTED} to ${REDACTED}.`,
    );
  });

  it("keeps the subject's own UPN and e-mail address, whatever their case", () => {
    expect(redactOtherPeople('from ADELE@Contoso.com, cc to=adele.vance@contoso.de', ADELE)).toBe(
      'from ADELE@Contoso.com, cc to=adele.vance@contoso.de',
    );
  });

  it('keeps GUIDs outside person keys: record and device ids are not people', () => {
    const record = { recordId: DEVICE_ID, deviceId: DEVICE_ID, azureAdDeviceId: BOB_OID, note: BOB_OID };
    expect(redactOtherPeople(record, ADELE)).toEqual(record);
  });

  it("redacts another person's object id and name under person keys, and keeps the subject's", () => {
    expect(
      redactOtherPeople(
        {
          managerId: BOB_OID,
          manager: 'Bob Kelly',
          primaryUserId: ADELE.objectId.toUpperCase(),
          createdBy: BOB_OID,
          assignedTo: 'adele@contoso.com',
          lastModifiedBy: 'Carol',
          recipients: ['adele@contoso.com', 'Bob Kelly', BOB_OID],
          managerEmployeeNumber: 4711,
        },
        ADELE,
      ),
    ).toEqual({
      managerId: REDACTED,
      manager: REDACTED,
      primaryUserId: ADELE.objectId.toUpperCase(),
      createdBy: REDACTED,
      assignedTo: 'adele@contoso.com',
      lastModifiedBy: REDACTED,
      recipients: ['adele@contoso.com', REDACTED, REDACTED],
      managerEmployeeNumber: REDACTED,
    });
  });

  it("redacts the identifying fields of another person's object and keeps its other fields", () => {
    expect(
      redactOtherPeople(
        {
          owner: { id: BOB_OID, displayName: 'Bob Kelly', department: 'Sales', name: { first: 'Bob' } },
          user: { id: ADELE.objectId, displayName: 'Adele Vance', manager: { id: BOB_OID, type: 'user' } },
        },
        ADELE,
      ),
    ).toEqual({
      owner: { id: REDACTED, displayName: REDACTED, department: 'Sales', name: { first: REDACTED } },
      // Carrying Adele's object id makes the object Adele: her name stays, her manager's id does not.
      user: { id: ADELE.objectId, displayName: 'Adele Vance', manager: { id: REDACTED, type: 'user' } },
    });
  });

  it('leaves keys that merely contain a person word alone', () => {
    const data = {
      userAgent: 'Mozilla/5.0',
      usersCount: 3,
      ownerType: 'company',
      displayName: 'Adele Vance',
    };
    expect(redactOtherPeople(data, ADELE)).toEqual(data);
  });

  it('redacts other addresses in keys too, without merging keys that redact alike', () => {
    expect(
      redactOtherPeople({ 'bob@contoso.com': 1, 'carol@contoso.com': 2, 'adele@contoso.com': 3 }, ADELE),
    ).toEqual({ [REDACTED]: 1, [`${REDACTED} (2)`]: 2, 'adele@contoso.com': 3 });
  });

  it('recognises the subject by any of several identifier sets', () => {
    const data = { contact: 'adele.v@contoso.onmicrosoft.com', text: 'mail adele.v@contoso.onmicrosoft.com' };
    expect(
      redactOtherPeople(data, [{ upn: 'adele@contoso.com' }, { email: 'adele.v@contoso.onmicrosoft.com' }]),
    ).toEqual(data);
  });

  it('returns a deep copy and leaves the input untouched', () => {
    const input = { nested: { list: [{ text: 'bob@contoso.com' }] }, flag: true, nothing: null };
    const output = redactOtherPeople(input, ADELE) as typeof input;
    expect(output).toEqual({ nested: { list: [{ text: REDACTED }] }, flag: true, nothing: null });
    expect(input.nested.list[0]?.text).toBe('bob@contoso.com');
    expect(output.nested).not.toBe(input.nested);
  });

  it('turns dates into ISO strings, like JSON would', () => {
    expect(redactOtherPeople({ at: new Date(Date.UTC(2025, 0, 2)) }, ADELE)).toEqual({
      at: '2025-01-02T00:00:00.000Z',
    });
  });
});

describe('namesPerson', () => {
  it.each([
    'user',
    'userId',
    'userPrincipalName',
    'primaryUser',
    'lastLoggedOnUserId',
    'managerUpn',
    'ownerDisplayName',
    'createdBy',
    'createdByUserId',
    'reportedBy',
    'modifiedBy',
    'assignedTo',
    'contactEmail',
    'recipients',
    'sender_name',
    'actor',
    'ownerPhone',
  ])('%s names a person', (key) => {
    expect(namesPerson(key)).toBe(true);
  });

  it.each([
    'id',
    'recordId',
    'deviceId',
    'displayName',
    'emailAddress',
    'userAgent',
    'usersCount',
    'ownerType',
    'deletedAt',
    'phoneNumber',
  ])('%s does not', (key) => {
    expect(namesPerson(key)).toBe(false);
  });
});

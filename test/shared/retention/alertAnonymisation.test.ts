import fc from 'fast-check';

import {
  ANONYMOUS_ALERT_FIELDS,
  anonymiseAlert,
  type AnonymousAlertCheck,
} from '../../../shared/retention/alertAnonymisation';

const ALLOWED = new Map(ANONYMOUS_ALERT_FIELDS.map((field) => [field.name, field.check]));

/** A Defender for Endpoint alert (GET /api/alerts/{id}?$expand=evidence), as the platform sends it. */
const DEFENDER_ALERT = {
  id: 'da637472900382838869_1364969609',
  incidentId: 1126093,
  investigationId: 1224,
  assignedTo: 'secops@contoso.com',
  severity: 'High',
  status: 'New',
  classification: 'TruePositive',
  determination: 'Malware',
  investigationState: 'Running',
  detectionSource: 'WindowsDefenderAtp',
  detectorId: '17e10bbc-3a68-474a-8aad-faef14d43952',
  category: 'CredentialAccess',
  threatFamilyName: 'Mimikatz',
  threatName: 'HackTool:Win32/Mimikatz.D',
  title: "'Mimikatz' credential theft tool detected",
  description:
    'Adele Vance ran a credential theft tool on contoso-adele-01 from C:\\Users\\adele.vance\\Downloads.',
  alertCreationTime: '2024-03-04T09:16:11.3733333Z',
  firstEventTime: '2024-03-04T09:14:02.1Z',
  lastEventTime: '2024-03-04T09:15:47.92Z',
  lastUpdateTime: '2024-03-05T12:00:00Z',
  resolvedTime: null,
  machineId: '111e6dd8c833c8a052ea231ec1b19adaf497b625',
  computerDnsName: 'contoso-adele-01.contoso.local',
  rbacGroupName: 'Sales laptops',
  aadTenantId: 'a839b112-1253-6432-9bf6-94542403f21c',
  relatedUser: { userName: 'adele.vance', domainName: 'CONTOSO' },
  mitreTechniques: ['T1003', 'T1003.001'],
  comments: [
    {
      comment: 'Talked to Adele, she downloaded it from a forum. Machine isolated.',
      createdBy: 'jane.analyst@contoso.com',
      createdTime: '2024-03-05T11:58:31Z',
    },
  ],
  evidence: [
    {
      entityType: 'File',
      evidenceCreationTime: '2024-03-04T09:16:12.01Z',
      sha1: '5f1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c',
      sha256: '0c4e7a2b0bb26c6d2fa0f1d3e4b5a69788f9a0b1c2d3e4f5061728394a5b6c7d',
      fileName: 'mimikatz.exe',
      filePath: 'C:\\Users\\adele.vance\\Downloads',
      processId: null,
      processCommandLine: null,
      detectionStatus: 'Prevented',
    },
    {
      entityType: 'Process',
      evidenceCreationTime: '2024-03-04T09:16:12.02Z',
      fileName: 'mimikatz.exe',
      filePath: 'C:\\Users\\adele.vance\\Downloads',
      processId: 7312,
      processCommandLine:
        'mimikatz.exe "privilege::debug" "sekurlsa::logonpasswords" > C:\\Users\\adele.vance\\out.txt',
      parentProcessId: 5044,
      parentProcessFileName: 'powershell.exe',
      accountName: 'adele.vance',
      domainName: 'CONTOSO',
      userSid: 'S-1-5-21-1782978896-3467612354-1234567890-1103',
      aadUserId: '4f1d3a52-8c1e-4b7a-9a44-5d2c0e6b7a01',
      userPrincipalName: 'adele.vance@contoso.com',
    },
    {
      entityType: 'User',
      evidenceCreationTime: '2024-03-04T09:16:12.03Z',
      accountName: 'adele.vance',
      domainName: 'CONTOSO',
      userSid: 'S-1-5-21-1782978896-3467612354-1234567890-1103',
      aadUserId: '4f1d3a52-8c1e-4b7a-9a44-5d2c0e6b7a01',
      userPrincipalName: 'adele.vance@contoso.com',
    },
    {
      entityType: 'Ip',
      evidenceCreationTime: '2024-03-04T09:16:12.04Z',
      ipAddress: '10.20.30.41',
    },
    {
      entityType: 'Ip',
      evidenceCreationTime: '2024-03-04T09:16:12.05Z',
      ipAddress: '2001:db8:85a3::8a2e:370:7334',
    },
  ],
};

/** A Microsoft Graph security alert (v2), with user, device, IP and process evidence. */
const GRAPH_ALERT = {
  '@odata.type': '#microsoft.graph.security.alert',
  id: 'da637578995287051192_756343937',
  providerAlertId: 'da637578995287051192_756343937',
  incidentId: '28282',
  status: 'new',
  severity: 'medium',
  classification: 'truePositive',
  determination: 'malware',
  serviceSource: 'microsoftDefenderForEndpoint',
  detectionSource: 'antivirus',
  productName: 'Microsoft Defender for Endpoint',
  detectorId: 'e0da400f-affd-43ef-b1d5-afc2eb6f2756',
  tenantId: 'b3c1b5fc-828c-45fa-a1e1-10d74f6d6e9c',
  title: 'Suspicious execution of hidden PowerShell script',
  description: 'A hidden PowerShell script was run by Adele Vance (adele.vance@contoso.com).',
  recommendedActions: 'Ask Adele Vance whether she ran the script; isolate CONTOSO-ADELE-01.',
  category: 'Execution',
  assignedTo: 'Jane Analyst',
  alertWebUrl:
    'https://security.microsoft.com/alerts/da637578995287051192_756343937?tid=b3c1b5fc-828c-45fa-a1e1-10d74f6d6e9c',
  incidentWebUrl: 'https://security.microsoft.com/incidents/28282?tid=b3c1b5fc-828c-45fa-a1e1-10d74f6d6e9c',
  actorDisplayName: null,
  threatDisplayName: null,
  threatFamilyName: null,
  mitreTechniques: ['T1059.001', 'T1027', 'not-a-technique'],
  createdDateTime: '2024-05-10T09:12:31.7022Z',
  lastUpdateDateTime: '2024-05-10T09:20:00.1Z',
  firstActivityDateTime: '2024-05-10T09:10:55.0000000Z',
  lastActivityDateTime: '2024-05-10T09:11:58Z',
  resolvedDateTime: null,
  systemTags: ['Defender Experts'],
  comments: [
    {
      comment: 'Adele confirmed she did not start it',
      createdByDisplayName: 'Jane Analyst',
      createdDateTime: '2024-05-11T08:00:00Z',
    },
  ],
  evidence: [
    {
      '@odata.type': '#microsoft.graph.security.userEvidence',
      createdDateTime: '2024-05-10T09:12:32.1Z',
      verdict: 'malicious',
      remediationStatus: 'none',
      roles: ['compromised'],
      userAccount: {
        accountName: 'adele.vance',
        domainName: 'CONTOSO',
        userSid: 'S-1-5-21-1782978896-3467612354-1234567890-1103',
        azureAdUserId: '4f1d3a52-8c1e-4b7a-9a44-5d2c0e6b7a01',
        userPrincipalName: 'adele.vance@contoso.com',
        displayName: 'Adele Vance',
      },
    },
    {
      '@odata.type': '#microsoft.graph.security.deviceEvidence',
      createdDateTime: '2024-05-10T09:12:32.2Z',
      verdict: 'unknown',
      remediationStatus: 'none',
      deviceDnsName: 'contoso-adele-01.contoso.local',
      azureAdDeviceId: '9b8c7d6e-5f4a-4b3c-8d2e-1f0a9b8c7d6e',
      mdeDeviceId: '111e6dd8c833c8a052ea231ec1b19adaf497b625',
      osPlatform: 'Windows11',
      osBuild: 22631,
      rbacGroupName: 'Sales laptops',
      healthStatus: 'active',
      riskScore: 'high',
      loggedOnUsers: [{ accountName: 'adele.vance', domainName: 'CONTOSO' }],
      ipInterfaces: ['10.20.30.41', 'fe80::1c2d:3e4f:5a6b:7c8d'],
    },
    {
      '@odata.type': '#microsoft.graph.security.ipEvidence',
      createdDateTime: '2024-05-10T09:12:32.3Z',
      verdict: 'malicious',
      remediationStatus: 'none',
      ipAddress: '198.51.100.7',
      countryLetterCode: 'NL',
    },
    {
      '@odata.type': '#microsoft.graph.security.processEvidence',
      createdDateTime: '2024-05-10T09:12:32.4Z',
      verdict: 'malicious',
      remediationStatus: 'prevented',
      processId: 4711,
      parentProcessId: 912,
      processCommandLine:
        'powershell.exe -nop -w hidden -ExecutionPolicy Bypass -File C:\\Users\\adele.vance\\AppData\\Local\\Temp\\run.ps1',
      processCreationDateTime: '2024-05-10T09:10:55.1Z',
      detectionStatus: 'detected',
      imageFile: {
        fileName: 'powershell.exe',
        filePath: 'C:\\Windows\\System32\\WindowsPowerShell\\v1.0',
        sha1: 'a1b2c3d4e5f60718293a4b5c6d7e8f9012345678',
      },
      userAccount: {
        accountName: 'adele.vance',
        domainName: 'CONTOSO',
        userPrincipalName: 'adele.vance@contoso.com',
        displayName: 'Adele Vance',
      },
    },
  ],
};

/** An Entra ID Protection alert (Graph v2) whose title names the user. */
const SIGN_IN_ALERT = {
  id: 'ad4b7d2fd5c1e6f2b7a3d7c9a1e2f3a4b5c6d7e8f9',
  incidentId: '30117',
  status: 'new',
  severity: 'high',
  classification: 'unknown',
  serviceSource: 'azureAdIdentityProtection',
  detectionSource: 'azureAdIdentityProtection',
  title: 'Suspicious sign-in by adele.vance@contoso.com',
  description: 'Sign-in from an anonymous IP address (185.220.101.4) for Adele Vance.',
  category: 'InitialAccess',
  mitreTechniques: ['T1078'],
  createdDateTime: '2024-06-01T22:41:09Z',
  lastUpdateDateTime: '2024-06-01T22:45:00Z',
  evidence: [
    {
      '@odata.type': '#microsoft.graph.security.userEvidence',
      userAccount: {
        accountName: 'adele.vance',
        userPrincipalName: 'adele.vance@contoso.com',
        azureAdUserId: '4f1d3a52-8c1e-4b7a-9a44-5d2c0e6b7a01',
        displayName: 'Adele Vance',
      },
    },
    { '@odata.type': '#microsoft.graph.security.ipEvidence', ipAddress: '185.220.101.4' },
  ],
};

const ADELE_NAME_PARTS = ['adele', 'vance'];

/** Every string in the alert (values at any depth) outside the allow-listed top-level fields. */
function stringsOutsideAllowList(alert: Record<string, unknown>): string[] {
  const found: string[] = [];
  const walk = (value: unknown): void => {
    if (typeof value === 'string') found.push(value);
    else if (Array.isArray(value)) value.forEach(walk);
    else if (value !== null && typeof value === 'object') Object.values(value).forEach(walk);
  };
  for (const [key, value] of Object.entries(alert)) if (!ALLOWED.has(key)) walk(value);
  return found.filter((text) => text.length >= 3);
}

function expectNamesNoOne(alert: Record<string, unknown>): void {
  const anonymised = JSON.stringify(anonymiseAlert(alert)).toLowerCase();
  for (const text of [...stringsOutsideAllowList(alert), ...ADELE_NAME_PARTS]) {
    expect({ text, found: anonymised.includes(JSON.stringify(text).slice(1, -1).toLowerCase()) }).toEqual({
      text,
      found: false,
    });
  }
}

describe('anonymiseAlert', () => {
  it('keeps only the allow-listed fields of a Defender for Endpoint alert, with their values', () => {
    expect(anonymiseAlert(DEFENDER_ALERT)).toEqual({
      severity: 'High',
      title: "'Mimikatz' credential theft tool detected",
      category: 'CredentialAccess',
      detectionSource: 'WindowsDefenderAtp',
      threatFamilyName: 'Mimikatz',
      mitreTechniques: ['T1003', 'T1003.001'],
      status: 'New',
      classification: 'TruePositive',
      determination: 'Malware',
      alertCreationTime: '2024-03-04T09:16:11.3733333Z',
      firstEventTime: '2024-03-04T09:14:02.1Z',
      lastEventTime: '2024-03-04T09:15:47.92Z',
      lastUpdateTime: '2024-03-05T12:00:00Z',
    });
  });

  it('leaves no account, device, IP, path, id or name of a Defender for Endpoint alert', () => {
    expectNamesNoOne(DEFENDER_ALERT);
  });

  it('keeps only the allow-listed fields of a Graph alert and drops invalid technique ids', () => {
    expect(anonymiseAlert(GRAPH_ALERT)).toEqual({
      severity: 'medium',
      title: 'Suspicious execution of hidden PowerShell script',
      category: 'Execution',
      detectionSource: 'antivirus',
      serviceSource: 'microsoftDefenderForEndpoint',
      mitreTechniques: ['T1059.001', 'T1027'],
      status: 'new',
      classification: 'truePositive',
      determination: 'malware',
      createdDateTime: '2024-05-10T09:12:31.7022Z',
      firstActivityDateTime: '2024-05-10T09:10:55.0000000Z',
      lastActivityDateTime: '2024-05-10T09:11:58Z',
      lastUpdateDateTime: '2024-05-10T09:20:00.1Z',
    });
  });

  it('leaves nothing of the user, device, IP and process evidence of a Graph alert', () => {
    expectNamesNoOne(GRAPH_ALERT);
  });

  it('replaces a title that names the user by the category', () => {
    expect(anonymiseAlert(SIGN_IN_ALERT)).toEqual({
      severity: 'high',
      title: 'InitialAccess',
      category: 'InitialAccess',
      detectionSource: 'azureAdIdentityProtection',
      serviceSource: 'azureAdIdentityProtection',
      mitreTechniques: ['T1078'],
      status: 'new',
      classification: 'unknown',
      createdDateTime: '2024-06-01T22:41:09Z',
      lastUpdateDateTime: '2024-06-01T22:45:00Z',
    });
    expectNamesNoOne(SIGN_IN_ALERT);
  });

  it('replaces a title that holds a word of an identifier found only deep in the evidence', () => {
    const alert = {
      title: 'Unfamiliar sign-in properties for Vance',
      category: 'InitialAccess',
      evidence: [{ userAccount: { displayName: 'Adele Vance' } }],
    };
    expect(anonymiseAlert(alert).title).toBe('InitialAccess');
    expect(anonymiseAlert({ ...alert, evidence: [] }).title).toBe('Unfamiliar sign-in properties for Vance');
  });

  it.each([
    ['an e-mail address', 'Mail forwarding rule created by megan@fabrikam.com'],
    ['an IPv4 address', 'Connection to 185.220.101.4 blocked'],
    ['an IPv6 address', 'Connection to 2001:db8::7334 blocked'],
    ['a GUID', 'Token replay for 7b2e4c63-9d2f-4c8b-8b55-6e3d1f7c8b02'],
    ['a SID', 'Privilege escalation by S-1-5-21-1004336348-1177238915-682003330-512'],
    ['a DOMAIN\\user account', 'Logon by CONTOSO\\megan.bowen'],
    ['a host name', 'Lateral movement to contoso-megan-01.contoso.local'],
    ['a dotted user name', 'Sign-in by megan.bowen'],
    ['a URL', 'Phishing link https://contoso.sharepoint.com/personal/megan opened'],
    ['a user profile path', 'Executable dropped in /home/megan/bin'],
    ['a long number', 'Call to +49 30 1234567 made'],
  ])('does not keep a title holding %s, even when nothing else names it', (_what, title) => {
    expect(anonymiseAlert({ title, category: 'Execution' })).toEqual({
      title: 'Execution',
      category: 'Execution',
    });
    expect(anonymiseAlert({ title })).toEqual({});
  });

  it('keeps a title that names a file, such as mimikatz.exe', () => {
    expect(anonymiseAlert({ title: 'Suspicious use of mimikatz.exe' })).toEqual({
      title: 'Suspicious use of mimikatz.exe',
    });
  });

  it('drops nested objects and every field off the allow-list, matching names exactly', () => {
    expect(
      anonymiseAlert({
        Severity: 'High',
        severity: { value: 'High' },
        category: ['Execution'],
        createdDateTime: { at: '2024-05-10T09:12:31Z' },
        eventCount: '3',
        machineId: 'abc',
        ...(JSON.parse('{"__proto__": "High", "constructor": "High"}') as Record<string, unknown>),
      }),
    ).toEqual({});
  });

  it.each<[string, unknown]>([
    ['an e-mail address', 'adele@contoso.com'],
    ['an IPv4 address', '10.20.30.41'],
    ['a dashed IPv4 address', 'ip-10-20-30-41'],
    ['a host name', 'contoso-adele-01.contoso.local'],
    ['a GUID', '4f1d3a52-8c1e-4b7a-9a44-5d2c0e6b7a01'],
    ['a path', 'C:\\Users\\adele'],
    ['a colon', 'HackTool:Win32/Mimikatz'],
    ['a long value', 'a'.repeat(65)],
    ['a number', 3],
  ])('drops a label holding %s', (_what, value) => {
    expect(
      anonymiseAlert({ severity: value, category: value, status: value, threatFamilyName: value }),
    ).toEqual({});
  });

  it('drops a label that is one of the identifiers of the alert', () => {
    const alert = { threatFamilyName: 'Adele', relatedUser: { userName: 'adele.vance' } };
    expect(anonymiseAlert(alert)).toEqual({});
    expect(anonymiseAlert({ threatFamilyName: 'Adele' })).toEqual({ threatFamilyName: 'Adele' });
  });

  it('keeps only ISO 8601 date-times that name a real moment', () => {
    const times = {
      createdDateTime: '2024-02-29T23:59:59+14:00',
      firstActivityDateTime: '2024-05-10T09:10',
      lastActivityDateTime: '2023-02-29T10:00:00Z',
      lastUpdateDateTime: '2024-05-10 09:12:31Z',
      resolvedDateTime: '2024-05-10T24:00:00Z',
      alertCreationTime: 'yesterday',
      firstEventTime: 1715332351000,
      lastEventTime: '2024-13-01T00:00:00Z',
    };
    expect(anonymiseAlert(times)).toEqual({
      createdDateTime: '2024-02-29T23:59:59+14:00',
      firstActivityDateTime: '2024-05-10T09:10',
    });
  });

  it('keeps only non-negative safe integer counts', () => {
    expect(
      anonymiseAlert({
        eventCount: 12,
        evidenceCount: -1,
        impactedDeviceCount: 1.5,
        impactedUserCount: Number.MAX_SAFE_INTEGER + 1,
      }),
    ).toEqual({ eventCount: 12 });
  });

  it('keeps the technique ids of a list and nothing else', () => {
    expect(
      anonymiseAlert({ mitreTechniques: ['T1078', 'T10780', 't1078', 'T1078.4', { id: 'T1003' }] }),
    ).toEqual({
      mitreTechniques: ['T1078'],
    });
    expect(anonymiseAlert({ mitreTechniques: 'T1078' })).toEqual({});
  });

  it('lists every kept field once, with a check and a reason', () => {
    const names = ANONYMOUS_ALERT_FIELDS.map((field) => field.name);
    expect(new Set(names).size).toBe(names.length);
    for (const field of ANONYMOUS_ALERT_FIELDS) expect(field.reason.length).toBeGreaterThan(0);
  });
});

// --- Properties --------------------------------------------------------------------------------------------

/** The checks, written again independently of the module, for what a kept value may be. */
function passesCheck(check: AnonymousAlertCheck, value: unknown): boolean {
  const isLabel = (item: unknown): boolean =>
    typeof item === 'string' &&
    /^[A-Za-z0-9 _.-]{1,64}$/.test(item) &&
    !/\d+[._ -]+\d+[._ -]+\d+/.test(item) &&
    !/\d{5}/.test(item);
  switch (check) {
    case 'label':
      return isLabel(value);
    case 'labels':
      return Array.isArray(value) && value.length > 0 && value.every(isLabel);
    case 'techniques':
      return (
        Array.isArray(value) &&
        value.length > 0 &&
        value.every((item) => typeof item === 'string' && /^T\d{4}(\.\d{3})?$/.test(item))
      );
    case 'title':
      return typeof value === 'string' && !/[@\\]/.test(value);
    case 'time':
      return (
        typeof value === 'string' &&
        /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}/.test(value) &&
        !Number.isNaN(Date.parse(value.length === 16 ? `${value}:00Z` : value))
      );
    case 'count':
      return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
  }
}

/** Plausible and implausible values for allow-listed fields, so that the property sees fields kept. */
const allowListedValue = fc.oneof(
  fc.constantFrom('High', 'medium', 'Execution', 'InitialAccess', 'Mimikatz', 'truePositive', 'new'),
  fc.constantFrom('2024-05-10T09:12:31.7022Z', '2024-02-29T23:59:59+01:00', 'T1078', 'T1059.001'),
  fc.constantFrom('adele@contoso.com', '10.0.0.1', 'CONTOSO\\adele', 'Sign-in by adele.vance'),
  fc.array(fc.constantFrom('T1078', 'T1003.001', 'Execution', 'adele', '10.0.0.1'), { maxLength: 4 }),
  fc.nat(),
  fc.string({ maxLength: 30 }),
  fc.jsonValue({ maxDepth: 2 }),
);

const alertLike = fc
  .tuple(
    fc.dictionary(fc.constantFrom(...ALLOWED.keys()), allowListedValue, { maxKeys: 12 }),
    fc.dictionary(fc.string({ maxLength: 12 }), fc.jsonValue({ maxDepth: 3 }), { maxKeys: 8 }),
  )
  .map(([allowListed, other]) => ({ ...other, ...allowListed }) as Record<string, unknown>);

/** Each string of a kept value, and its key: the only text the anonymised alert may hold. */
function textsOf(fields: Record<string, unknown>): string[] {
  return Object.entries(fields).flatMap(([key, value]) => [
    key,
    ...(Array.isArray(value) ? value : [value])
      .filter((item) => typeof item === 'string' || typeof item === 'number')
      .map(String),
  ]);
}

function stringsAndKeys(value: unknown): string[] {
  if (typeof value === 'string') return [value];
  if (Array.isArray(value)) return value.flatMap(stringsAndKeys);
  if (value !== null && typeof value === 'object') {
    return Object.entries(value).flatMap(([key, field]) => [key, ...stringsAndKeys(field)]);
  }
  return [];
}

describe('anonymiseAlert, for any alert', () => {
  it('keeps only allow-listed fields, each passing its check', () => {
    fc.assert(
      fc.property(fc.oneof(alertLike, fc.object() as fc.Arbitrary<Record<string, unknown>>), (alert) => {
        for (const [key, value] of Object.entries(anonymiseAlert(alert))) {
          const check = ALLOWED.get(key);
          expect(check).toBeDefined();
          expect({ key, value, passes: passesCheck(check!, value) }).toEqual({ key, value, passes: true });
        }
      }),
    );
  });

  it('keeps no text from outside the allow-listed fields that they do not hold themselves', () => {
    fc.assert(
      fc.property(alertLike, (alert) => {
        const inside = Object.fromEntries(Object.entries(alert).filter(([key]) => ALLOWED.has(key)));
        const insideTexts = textsOf(inside).map((text) => text.toLowerCase());
        const outputTexts = textsOf(anonymiseAlert(alert)).map((text) => text.toLowerCase());
        const outside = [
          ...Object.entries(alert).flatMap(([key, value]) =>
            ALLOWED.has(key) ? [] : [key, ...stringsAndKeys(value)],
          ),
          // Objects and arrays under allow-listed names are dropped (techniques excepted): outside too.
          ...Object.values(inside).flatMap((value) =>
            value !== null && typeof value === 'object' ? stringsAndKeys(value) : [],
          ),
        ].filter((text) => text.length >= 3);
        for (const text of outside.map((item) => item.toLowerCase())) {
          if (outputTexts.some((output) => output.includes(text))) {
            expect(insideTexts.some((own) => own.includes(text))).toBe(true);
          }
        }
      }),
    );
  });

  it("never keeps a title holding the person's address, account, device or name", () => {
    // Domain suffixes (com, local) are not taken for names: they name no one.
    const namePart = fc
      .stringMatching(/^[a-z]{3,8}$/)
      .filter((part) => !['com', 'net', 'org', 'gov', 'local', 'internal', 'www'].includes(part));
    const vocabulary = fc.constantFrom(
      'Suspicious',
      'sign-in',
      'activity',
      'on',
      'from',
      'by',
      'theft',
      'tool',
    );
    fc.assert(
      fc.property(
        namePart,
        namePart,
        fc.array(vocabulary, { minLength: 1, maxLength: 5 }),
        fc.option(fc.nat({ max: 5 }), { nil: undefined }),
        fc.constantFrom('upn', 'account', 'device', 'given', 'family'),
        fc.boolean(),
        (given, family, words, at, which, shout) => {
          const person = {
            upn: `${given}.${family}@contoso.com`,
            account: `CONTOSO\\${given}.${family}`,
            device: `${given}-${family}-pc`,
            given,
            family,
          };
          const spliced = shout ? person[which].toUpperCase() : person[which];
          const title = [
            ...words.slice(0, at ?? words.length),
            ...(at === undefined ? [] : [spliced]),
            ...words.slice(at ?? words.length),
          ].join(' ');
          const alert = {
            title,
            category: 'InitialAccess',
            relatedUser: { userName: `${given}.${family}`, domainName: 'CONTOSO' },
            evidence: [
              {
                '@odata.type': '#microsoft.graph.security.userEvidence',
                userAccount: { displayName: `${given} ${family}`, userPrincipalName: person.upn },
              },
              { deviceDnsName: `${person.device}.contoso.local` },
            ],
          };
          const kept = anonymiseAlert(alert).title as string;
          for (const identifier of Object.values(person)) {
            expect(kept.toLowerCase()).not.toContain(identifier.toLowerCase());
          }
          // A title of plain words stays, unless a word happens to hold a part of the name.
          const holdsName = [given, family, 'contoso'].some((part) => title.toLowerCase().includes(part));
          expect(kept).toBe(holdsName || at !== undefined ? 'InitialAccess' : title);
        },
      ),
    );
  });
});

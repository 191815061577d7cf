// GET .../dsr with Accept: text/csv (SPEC §9): every matching request (not a page), streamed, one row each
// with received, type, regulation, status, decision and reason, completed and days taken; quoting per RFC
// 4180 and no formula a spreadsheet would run.
import { csvCell, csvRow } from '../../shared/requests/requestCsv';
import { startTestHost, type TestHost } from '../support/testHost';

let host: TestHost;
let tenantId: string;
let reader: string;
const setup = { actor: { type: 'user' as const, id: 'setup' }, correlationId: 'setup' };

beforeAll(async () => {
  host = await startTestHost();
  tenantId = await host.provisionTenant('DE');
  reader = await host.issuer.token({ tenantId, roles: ['Privacy.Reader'] });
});
afterAll(() => host.stop());

/** RFC 4180 records: quoted cells may hold commas, quotes (doubled) and line breaks. */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let cell = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        cell += '"';
        i++;
      } else if (c === '"') {
        quoted = false;
      } else {
        cell += c;
      }
    } else if (c === '"') {
      quoted = true;
    } else if (c === ',') {
      row.push(cell);
      cell = '';
    } else if (c === '\r' && text[i + 1] === '\n') {
      row.push(cell);
      rows.push(row);
      row = [];
      cell = '';
      i++;
    } else {
      cell += c;
    }
  }
  return rows;
}

describe('requests as CSV', () => {
  it('lists every matching request, beyond one page, with decisions and their reasons', async () => {
    const tenant = await host.services.directory.resolve(tenantId);
    const ids: string[] = [];
    for (let i = 0; i < 55; i++) {
      const created = await host.services.requests.create(
        tenant,
        {
          type: i % 2 ? 'access' : 'delete',
          regulation: i % 3 ? 'GDPR' : 'CCPA',
          subject: { upn: `p${i}@contoso.com` },
          dataSubjectType: 'currentEmployee',
        },
        setup,
      );
      ids.push(created.id);
    }
    const tricky = 'Not verified, "twice"\nsee ticket';
    await host.services.requests.decide(tenant, ids[0]!, 'decline', { ...setup, reason: tricky });
    await host.services.requests.decide(tenant, ids[1]!, 'cancel', {
      ...setup,
      reason: '=HYPERLINK("http://x")',
    });

    const response = await fetch(`${host.baseUrl}/api/tenants/${tenantId}/dsr?top=5`, {
      headers: { authorization: `Bearer ${reader}`, accept: 'text/csv' },
    });
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('text/csv; charset=utf-8');
    const rows = parseCsv(await response.text());
    expect(rows[0]).toEqual([
      'id',
      'received',
      'type',
      'regulation',
      'status',
      'decision',
      'decisionReason',
      'completed',
      'daysTaken',
    ]);
    const byId = new Map(rows.slice(1).map((row) => [row[0]!, row]));
    for (const id of ids) expect(byId.has(id)).toBe(true);
    expect(byId.get(ids[0]!)!.slice(4, 7)).toEqual(['declined', 'declined', tricky]);
    expect(byId.get(ids[1]!)!.slice(4, 7)).toEqual(['cancelled', 'cancelled', `'=HYPERLINK("http://x")`]);

    // Filters apply; JSON stays the default.
    const declined = await fetch(`${host.baseUrl}/api/tenants/${tenantId}/dsr?status=declined`, {
      headers: { authorization: `Bearer ${reader}`, accept: 'text/csv' },
    });
    expect(
      parseCsv(await declined.text())
        .slice(1)
        .map((row) => row[0]),
    ).toEqual([ids[0]]);
    const json = await host.call('GET', `/api/tenants/${tenantId}/dsr?top=5`, { token: reader });
    expect(json.body.value).toHaveLength(5);
  }, 60_000);
});

describe('csvRow', () => {
  it('gives the decision, completion and days taken from the history', () => {
    const row = csvRow({
      id: 'r1',
      receivedAt: '2026-01-01T00:00:00.000Z',
      type: 'export',
      regulation: 'GDPR',
      status: 'completed',
      history: [
        {
          action: 'create',
          to: 'received',
          at: '2026-01-01T00:00:00.000Z',
          actor: { type: 'user', id: 'a' },
        },
        {
          action: 'approve',
          from: 'awaitingReview',
          to: 'inProgress',
          at: '2026-01-02T00:00:00.000Z',
          actor: { type: 'user', id: 'a' },
        },
        {
          action: 'complete',
          from: 'inProgress',
          to: 'completed',
          at: '2026-01-04T12:00:00.000Z',
          actor: { type: 'system', id: 's' },
        },
      ],
    });
    expect(row).toBe(
      'r1,2026-01-01T00:00:00.000Z,export,GDPR,completed,approved,,2026-01-04T12:00:00.000Z,3.5\r\n',
    );
  });

  it('quotes what needs quoting and defuses formulas', () => {
    expect(csvCell('plain')).toBe('plain');
    expect(csvCell('a,b')).toBe('"a,b"');
    expect(csvCell('say "hi"')).toBe('"say ""hi"""');
    expect(csvCell('+1 555')).toBe("'+1 555");
    expect(csvCell('@SUM(A1)')).toBe("'@SUM(A1)");
  });
});

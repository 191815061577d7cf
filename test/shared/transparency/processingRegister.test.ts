// The processing register is built from the tables the service enforces: every category and every retention
// rule appears, each category's retention is exactly what the purge does to its records (compared with the
// expiry entries the purge acts on), and changing a rule changes the register.
import { RETENTION_POLICY, type RetentionRule } from '../../../shared/retention/retentionPolicy';
import {
  anonymousAlertExpiry,
  recordExpiries,
  type RecordExpiryAction,
} from '../../../shared/retention/expiryIndex';
import { buildProcessingRegister, type RegisterInput } from '../../../shared/transparency/processingRegister';
import { RECORD_CATEGORIES } from '../../../shared/vocabulary/categories';
import { CATEGORY_WORDS } from '../../../shared/vocabulary/categoryWords';

const input: RegisterInput = {
  tenant: { tenantId: 't', displayName: 'Contoso', countryCode: 'DE', geography: 'EU' },
  requireTenantApproval: true,
  operators: { staffLocations: ['United States', 'India'], authContext: 'c1' },
  generatedAt: new Date('2026-11-25T12:00:00Z'),
};

const DAY = 86_400_000;
const occurred = new Date('2026-01-10T08:00:00Z');
const deleted = new Date('2026-02-20T09:00:00Z');
const day = (date: Date) => date.toISOString().slice(0, 10);

function after(from: Date, period: RetentionRule['after']): string {
  const due = new Date(from.getTime());
  if ('days' in period) due.setUTCDate(due.getUTCDate() + period.days);
  else due.setUTCFullYear(due.getUTCFullYear() + period.years);
  return day(due);
}

describe('the processing register', () => {
  it('names every category in words, stored in the tenant geography, and every retention rule', () => {
    const register = buildProcessingRegister(input);
    expect(register.categories.map((c) => c.category)).toEqual([...RECORD_CATEGORIES]);
    for (const c of register.categories) {
      expect(c).toMatchObject({ ...CATEGORY_WORDS[c.category], storedIn: { geography: 'EU' } });
      expect(c.staffAccess).toContain('United States and India');
    }
    expect(register.retentionPolicy.map((r) => r.rule)).toEqual(Object.keys(RETENTION_POLICY));
    expect(register.operatorAccess).toMatchObject({
      standingAccess: false,
      grantMinutes: { min: 15, max: 480 },
      undecidedRequestsExpireAfterHours: 12,
      tenantApprovalRequired: true,
    });
    expect(register.profilingAdvertisingMarketing).toMatch(/No personal data is used for profiling/);
  });

  it('says for each category exactly what the purge does to its records, no more and no less', () => {
    const register = buildProcessingRegister(input);
    const target = { subjectKey: 's', recordRow: 'r' };
    for (const c of register.categories) {
      // What the purge does: the entries it writes for a live record, and for one deleted at its source.
      const live = recordExpiries({ category: c.category, occurredAt: occurred.toISOString() }, target);
      const gone = recordExpiries(
        { category: c.category, occurredAt: occurred.toISOString(), deletedAt: deleted.toISOString() },
        target,
      ).filter((e) => e.kind === 'record' && e.action === 'purgeDeleted');
      const purged: string[] = [...live, ...gone].map((e) =>
        e.kind === 'record' ? `${e.action} ${e.day}` : 'other',
      );
      // An anonymised alert gets an entry of its own when it is anonymised.
      if (live.some((e) => e.kind === 'record' && e.action === 'anonymise')) {
        purged.push(`anonymousDelete ${anonymousAlertExpiry('a', occurred).day}`);
      }
      // What the register says.
      const said = c.retention.rules.map((rule) => {
        const from = rule.from === 'deletedAt' ? deleted : occurred;
        const action: RecordExpiryAction | 'anonymousDelete' =
          rule.rule === 'softDeleted'
            ? 'purgeDeleted'
            : rule.rule === 'alertDeletion'
              ? 'anonymousDelete'
              : rule.action;
        return `${action} ${after(from, rule.period)}`;
      });
      expect({ category: c.category, rules: said.sort() }).toEqual({
        category: c.category,
        rules: purged.sort(),
      });
    }
  });

  it('changes when a retention rule changes', () => {
    const rule = RETENTION_POLICY.shortLived as { after: { days: number } };
    const kept = rule.after.days;
    try {
      rule.after.days = 45;
      const register = buildProcessingRegister(input);
      const usage = register.categories.find((c) => c.category === 'usage')!;
      expect(usage.retention.rules[0]).toMatchObject({ rule: 'shortLived', after: '45 days' });
      expect(usage.retention.words).toMatch(/^Deleted 45 days after it was recorded/);
      const [entry] = recordExpiries(
        { category: 'usage', occurredAt: occurred.toISOString() },
        {
          subjectKey: 's',
          recordRow: 'r',
        },
      );
      expect(entry?.day).toBe(day(new Date(occurred.getTime() + 45 * DAY)));
    } finally {
      rule.after.days = kept;
    }
  });
});

// How long each category of personal data is kept, derived from the retention table the purge applies
// (retentionPolicy.ts), never written apart from it: the processing register and the Art. 15 report say what
// the purge does because they read the same rules. Pure.
import type { RecordCategory } from '../vocabulary/categories';
import { RETENTION_POLICY, type RetentionRule, type RetentionRuleName } from './retentionPolicy';

export interface CategoryRetentionRule {
  rule: RetentionRuleName;
  action: RetentionRule['action'];
  after: RetentionRule['after'];
  from: RetentionRule['from'];
}

export interface CategoryRetention {
  /** The rules that act on the category's records while the subscription runs, in the order they act. */
  rules: CategoryRetentionRule[];
  /** Whether live records are kept until deleted (no rule acts on them by age). */
  keptWhileLive: boolean;
  /** The rules in words, as one sentence a person reads. */
  words: string;
}

const FROM_WORDS: Record<RetentionRule['from'], string> = {
  occurredAt: 'after it was recorded',
  deletedAt: 'after it was deleted',
  endedAt: 'after the subscription ended',
  completedAt: 'after the request completed',
  time: 'after it was written',
};

export const periodWords = (after: RetentionRule['after']): string =>
  'days' in after
    ? `${after.days} day${after.days === 1 ? '' : 's'}`
    : `${after.years} year${after.years === 1 ? '' : 's'}`;

/** Rules naming categories act on those; the soft-deletion rule acts on every category's deleted records. */
export function retentionOf(category: RecordCategory): CategoryRetention {
  const named = (Object.entries(RETENTION_POLICY) as [RetentionRuleName, RetentionRule][]).filter(
    ([, rule]) => (rule.categories as readonly string[] | undefined)?.includes(category),
  );
  const rules: CategoryRetentionRule[] = [
    ...named.map(([name, rule]) => ({ rule: name, action: rule.action, after: rule.after, from: rule.from })),
  ];
  // Every record may be deleted at its source (record.deleted, subject.deleted, device.retired): it is then
  // purged 30 days later whatever its category.
  const soft = RETENTION_POLICY.softDeleted;
  rules.push({ rule: 'softDeleted', action: soft.action, after: soft.after, from: soft.from });
  const keptWhileLive = !named.some(([, rule]) => rule.from === 'occurredAt' && rule.action === 'delete');
  const anonymise = named.find(([, rule]) => rule.action === 'anonymise');
  const parts: string[] = [];
  if (anonymise) {
    const [, rule] = anonymise;
    parts.push(`personal fields removed ${periodWords(rule.after)} ${FROM_WORDS[rule.from]}`);
  }
  for (const [name, rule] of named) {
    if (rule.action !== 'delete') continue;
    const what = anonymise && name !== 'shortLived' ? 'the anonymised rest deleted' : 'deleted';
    parts.push(`${what} ${periodWords(rule.after)} ${FROM_WORDS[rule.from]}`);
  }
  if (keptWhileLive && !anonymise) parts.push('kept while it is current');
  parts.push(`purged ${periodWords(soft.after)} after it is deleted at its source`);
  const ended = RETENTION_POLICY.endedSubscription;
  parts.push(`and everything ${periodWords(ended.after)} after the subscription ends`);
  const sentence = parts.join('; ');
  return { rules, keptWhileLive, words: sentence.charAt(0).toUpperCase() + sentence.slice(1) + '.' };
}

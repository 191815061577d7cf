// Who a data subject is (SPEC §4 "Who a subject is"): one Entra object id. UPNs and e-mail addresses are
// aliases that point to the object id they were most recently seen with, and two object ids are never
// merged. Records whose events carry no object id are kept under their alias's own subject until an event
// links the alias to an object id (then records/subjectMerge.ts moves them).
//
// Layout (all keys are per-tenant HMACs): table `recordLookup`, partition `${tenantId}_i<2 hex>`, one row
// `${aliasKey}_${subjectKey}` {subjectKey, holder, seenAt} per alias and subject it was seen with; the
// alias's current holder is its object-id subject seen most recently, or its own subject while no object id
// was ever seen with it. In each subject's partition of `records`, rows `~id_<identifier key>` {kind} list
// the identifiers the subject was seen with: erasure removes their alias rows, and a package keeps them
// readable.
import { RestError, type TableClient, type TransactionAction } from '@azure/data-tables';

import { hmacWith, type Pseudonymizer } from '../crypto/pseudonymizer';
import type { DataSubject } from '../vocabulary/dataSubject';
import type { TenantScope } from '../residency/tenantDirectory';
import { TABLES } from '../storage/names';
import { submitInBatches } from '../storage/tableBatches';
import { lookupKeys, recordsPartition, rowKeyRange, subjectRows } from './recordKeys';
import { readRow } from './recordRows';

export const IDENTIFIER_KINDS = ['objectId', 'upn', 'email'] as const;
export type IdentifierKind = (typeof IDENTIFIER_KINDS)[number];

/** `object`: an object id's subject; `alias`: the alias's own subject (no object id seen with it yet). */
export type Holder = 'object' | 'alias';

export interface Identifier {
  kind: IdentifierKind;
  /** The identifier's HMAC. */
  key: string;
}

interface AliasRow {
  partitionKey: string;
  rowKey: string;
  subjectKey: string;
  holder: Holder;
  /** The latest `occurredAt` of an event that carried the alias with this subject ('' for a request). */
  seenAt: string;
  etag: string;
}

/** A subject resolved for a write: where the record goes, and alias subjects to merge into it first. */
export interface EventSubject {
  subjectKey: string;
  holder: Holder;
  /** Alias-own subjects that this event links to the object id (subjectMerge moves them into it). */
  links: string[];
}

/** The subject a request acts on (SPEC §5: an alias acts on its current holder alone). */
export interface RequestSubject {
  subjectKey: string;
  holder: Holder;
  /** For a request naming only an alias: how many other object ids held that alias before (never who). */
  earlierHolders: number;
  /** Alias-own subjects the request's object id takes over (aliases it named that nobody else holds). */
  links: string[];
}

/** How long alias rows read by this instance are trusted (as SubjectKeyStore trusts keys: 60 s). */
const CACHE_TTL_MS = 60_000;
const CACHE_LIMIT = 50_000;

/** The current holder among an alias's rows: the object subject seen last, else the alias's own. Pure. */
export function currentHolder<T extends Pick<AliasRow, 'subjectKey' | 'holder' | 'seenAt'>>(
  rows: readonly T[],
): T | undefined {
  let best: T | undefined;
  for (const row of rows) {
    if (!best || rank(row) > rank(best)) best = row;
  }
  return best;
}

// Object holders outrank the alias's own subject; then the later seenAt; then the key, so ties agree.
const rank = (row: Pick<AliasRow, 'subjectKey' | 'holder' | 'seenAt'>) =>
  `${row.holder === 'object' ? 1 : 0}|${row.seenAt}|${row.subjectKey}`;

export class SubjectIdentity {
  private readonly aliasCache = new Map<string, { rows: AliasRow[]; at: number }>();
  /** `${tenant}|${subjectKey}|${identifierKey}`: identifier rows this instance knows exist. */
  private readonly knownIdentifierRows = new Map<string, number>();

  constructor(private readonly pseudonymizer: Pseudonymizer) {}

  /** The HMACs of a subject's identifiers, most stable kind first. */
  async identifiersOf(tenant: TenantScope, subject: DataSubject): Promise<Identifier[]> {
    const key = await this.pseudonymizer.keyFor(tenant);
    return IDENTIFIER_KINDS.filter((kind) => subject[kind] !== undefined).map((kind) => ({
      kind,
      key: hmacWith(key, kind, subject[kind]!),
    }));
  }

  /**
   * Where a record event's subject is: the object id's subject when the event carries one (its aliases now
   * point there too); otherwise the current holder of its aliases, or the first alias's own subject.
   */
  async forEvent(tenant: TenantScope, subject: DataSubject, seenAt: string): Promise<EventSubject> {
    const identifiers = await this.identifiersOf(tenant, subject);
    const objectId = identifiers.find((id) => id.kind === 'objectId');
    const aliases = identifiers.filter((id) => id.kind !== 'objectId');
    const states = await Promise.all(aliases.map((alias) => this.aliasRows(tenant, alias.key)));
    if (objectId) {
      const links = new Set<string>();
      for (const [i, alias] of aliases.entries()) {
        const rows = await this.hold(tenant, alias.key, states[i]!, objectId.key, 'object', seenAt);
        for (const row of rows) if (row.holder === 'alias') links.add(row.subjectKey);
      }
      await this.listIdentifiers(tenant, objectId.key, identifiers);
      return { subjectKey: objectId.key, holder: 'object', links: [...links] };
    }
    const held = pickHolder(states);
    const subjectKey = held?.subjectKey ?? aliases[0]!.key;
    const holder: Holder = held?.holder ?? 'alias';
    // Aliases seen for the first time go with the others; an alias someone else holds is left alone.
    const listed: Identifier[] = [];
    for (const [i, alias] of aliases.entries()) {
      const rows = states[i]!;
      if (rows.length === 0) await this.hold(tenant, alias.key, rows, subjectKey, holder, seenAt);
      if (rows.length === 0 || currentHolder(rows)?.subjectKey === subjectKey) listed.push(alias);
    }
    await this.listIdentifiers(tenant, subjectKey, listed);
    return { subjectKey, holder, links: [] };
  }

  /**
   * The subject a request names, read only: its object id's subject, or its first alias's current holder
   * (the alias's own subject when nobody holds it).
   */
  async forRequest(tenant: TenantScope, subject: DataSubject): Promise<RequestSubject> {
    const identifiers = await this.identifiersOf(tenant, subject);
    const objectId = identifiers.find((id) => id.kind === 'objectId');
    const aliases = identifiers.filter((id) => id.kind !== 'objectId');
    const states = await Promise.all(aliases.map((alias) => this.aliasRows(tenant, alias.key, true)));
    if (objectId) {
      // An alias the request names that no object id holds is this person's: the request links it.
      const links = states.flatMap((rows) =>
        rows.some((row) => row.holder === 'object') ? [] : rows.map((row) => row.subjectKey),
      );
      return { subjectKey: objectId.key, holder: 'object', earlierHolders: 0, links: [...new Set(links)] };
    }
    const index = states.findIndex((rows) => rows.some((row) => row.holder === 'object'));
    const chosen = index >= 0 ? index : states.findIndex((rows) => rows.length > 0);
    const rows = states[chosen] ?? [];
    const holder = currentHolder(rows);
    if (!holder) return { subjectKey: aliases[0]!.key, holder: 'alias', earlierHolders: 0, links: [] };
    const earlierHolders = rows.filter(
      (row) => row.holder === 'object' && row.subjectKey !== holder.subjectKey,
    ).length;
    return { subjectKey: holder.subjectKey, holder: holder.holder, earlierHolders, links: [] };
  }

  /**
   * Makes a request's subject findable: its aliases point to it (an object id takes over aliases nobody
   * else holds; an alias's own subject is registered), and its identifiers are listed in its partition.
   */
  async register(tenant: TenantScope, subject: DataSubject, resolved: RequestSubject): Promise<void> {
    const identifiers = await this.identifiersOf(tenant, subject);
    const listed: Identifier[] = [];
    for (const alias of identifiers.filter((id) => id.kind !== 'objectId')) {
      const rows = await this.aliasRows(tenant, alias.key, true);
      const taken = rows.some((row) => row.holder === 'object' && row.subjectKey !== resolved.subjectKey);
      if (resolved.holder === 'object' && taken) continue;
      if (resolved.holder === 'alias' && rows.some((row) => row.subjectKey !== resolved.subjectKey)) continue;
      // '' ranks below any event: what events say about the alias wins over what a request said.
      await this.hold(tenant, alias.key, rows, resolved.subjectKey, resolved.holder, '');
      listed.push(alias);
    }
    const objectId = identifiers.find((id) => id.kind === 'objectId');
    await this.listIdentifiers(tenant, resolved.subjectKey, objectId ? [objectId, ...listed] : listed);
  }

  /** The identifier HMACs listed in a subject's partition (every identifier it was seen with). */
  async listedIdentifiers(tenant: TenantScope, subjectKey: string): Promise<Identifier[]> {
    const records = await this.records(tenant);
    const partitionKey = recordsPartition(tenant.tenantId, subjectKey);
    const found: Identifier[] = [];
    for await (const row of records.listEntities<{ kind: IdentifierKind }>({
      queryOptions: {
        filter: rowKeyRange(partitionKey, subjectRows.identifierPrefix),
        select: ['RowKey', 'kind'],
      },
    })) {
      found.push({ kind: row.kind, key: row.rowKey!.slice(subjectRows.identifierPrefix.length) });
    }
    return found;
  }

  /**
   * Moves identifier rows from an alias's own subject to the object subject it merges into: the alias rows
   * point to the object subject (as seen when they were seen with the alias), then the old ones go.
   */
  async transferIdentifiers(tenant: TenantScope, from: string, to: string): Promise<void> {
    const identifiers = await this.listedIdentifiers(tenant, from);
    for (const identifier of identifiers.filter((id) => id.kind !== 'objectId')) {
      const rows = await this.aliasRows(tenant, identifier.key, true);
      const old = rows.find((row) => row.subjectKey === from);
      await this.hold(tenant, identifier.key, rows, to, 'object', old?.seenAt ?? '');
    }
    await this.listIdentifiers(tenant, to, identifiers);
    await this.forget(tenant, from, identifiers);
  }

  /**
   * Erasure: removes the alias rows that point to the subject and its identifier list. Aliases it held pass
   * to their earlier holders, if any (the rows of other subjects are not touched).
   */
  async forget(tenant: TenantScope, subjectKey: string, identifiers?: readonly Identifier[]): Promise<void> {
    const listed = identifiers ?? (await this.listedIdentifiers(tenant, subjectKey));
    const lookups = await this.lookups(tenant);
    const aliasDeletes = listed
      .filter((id) => id.kind !== 'objectId')
      .map((id): TransactionAction => {
        const { partitionKey, prefix } = lookupKeys.identifier(tenant.tenantId, id.key);
        return ['delete', { partitionKey, rowKey: `${prefix}${subjectKey}` }];
      });
    await submitInBatches(lookups, aliasDeletes);
    const partitionKey = recordsPartition(tenant.tenantId, subjectKey);
    await submitInBatches(
      await this.records(tenant),
      listed.map((id): TransactionAction => [
        'delete',
        { partitionKey, rowKey: subjectRows.identifier(id.key) },
      ]),
    );
    for (const key of [...this.aliasCache.keys()])
      if (key.startsWith(`${tenant.tenantId}|`)) this.aliasCache.delete(key);
    for (const key of [...this.knownIdentifierRows.keys()]) {
      if (key.startsWith(`${tenant.tenantId}|${subjectKey}|`)) this.knownIdentifierRows.delete(key);
    }
  }

  /** The rows of an alias: every subject it was seen with. Cached for writes; `fresh` reads storage. */
  private async aliasRows(tenant: TenantScope, aliasKey: string, fresh = false): Promise<AliasRow[]> {
    const cacheKey = `${tenant.tenantId}|${aliasKey}`;
    const cached = this.aliasCache.get(cacheKey);
    if (!fresh && cached && Date.now() - cached.at < CACHE_TTL_MS) return cached.rows;
    const table = await this.lookups(tenant);
    const { partitionKey, prefix } = lookupKeys.identifier(tenant.tenantId, aliasKey);
    const rows: AliasRow[] = [];
    for await (const row of table.listEntities<Omit<AliasRow, 'etag'>>({
      queryOptions: { filter: rowKeyRange(partitionKey, prefix) },
    })) {
      rows.push({
        partitionKey: row.partitionKey,
        rowKey: row.rowKey,
        subjectKey: row.subjectKey,
        // Rows written before aliases had holders were written for the first identifier's subject.
        holder: row.holder ?? 'object',
        seenAt: row.seenAt ?? '',
        etag: row.etag,
      });
    }
    this.remember(cacheKey, rows);
    return rows;
  }

  /**
   * Records that `subjectKey` was seen with the alias at `seenAt`. The row's time moves forward only when
   * another object subject also holds the alias (the sole holder needs no write per event); concurrent
   * writers are reconciled by ETag. Returns the alias's rows as they are now.
   */
  private async hold(
    tenant: TenantScope,
    aliasKey: string,
    rows: AliasRow[],
    subjectKey: string,
    holder: Holder,
    seenAt: string,
  ): Promise<AliasRow[]> {
    const table = await this.lookups(tenant);
    for (let attempt = 0; attempt < 5; attempt++) {
      const own = rows.find((row) => row.subjectKey === subjectKey);
      const contested = rows.some((row) => row.subjectKey !== subjectKey && row.holder === 'object');
      try {
        if (!own) {
          const { partitionKey, prefix } = lookupKeys.identifier(tenant.tenantId, aliasKey);
          const row = { partitionKey, rowKey: `${prefix}${subjectKey}`, subjectKey, holder, seenAt };
          const { etag } = await table.createEntity(row);
          rows = [...rows, { ...row, etag: etag! }];
        } else if ((own.seenAt < seenAt && contested) || own.holder !== holder) {
          const next = { ...own, holder, seenAt: own.seenAt < seenAt ? seenAt : own.seenAt };
          const { etag } = await table.updateEntity(
            { partitionKey: own.partitionKey, rowKey: own.rowKey, holder: next.holder, seenAt: next.seenAt },
            'Merge',
            { etag: own.etag },
          );
          rows = rows.map((row) => (row === own ? { ...next, etag: etag! } : row));
        }
        this.remember(`${tenant.tenantId}|${aliasKey}`, rows);
        return rows;
      } catch (error) {
        if (!(error instanceof RestError && [404, 409, 412].includes(error.statusCode ?? 0))) throw error;
        rows = await this.aliasRows(tenant, aliasKey, true);
      }
    }
    throw new Error('The alias kept changing concurrently.');
  }

  /** Lists identifiers in the subject's partition (each row written once; known ones are skipped). */
  private async listIdentifiers(
    tenant: TenantScope,
    subjectKey: string,
    identifiers: readonly Identifier[],
  ): Promise<void> {
    const partitionKey = recordsPartition(tenant.tenantId, subjectKey);
    const missing = identifiers.filter(
      (id) => !this.knownIdentifierRows.has(`${tenant.tenantId}|${subjectKey}|${id.key}`),
    );
    if (missing.length === 0) return;
    await submitInBatches(
      await this.records(tenant),
      missing.map((id): TransactionAction => [
        'upsert',
        { partitionKey, rowKey: subjectRows.identifier(id.key), kind: id.kind },
        'Replace',
      ]),
    );
    for (const id of missing) {
      if (this.knownIdentifierRows.size >= CACHE_LIMIT) this.knownIdentifierRows.clear();
      this.knownIdentifierRows.set(`${tenant.tenantId}|${subjectKey}|${id.key}`, Date.now());
    }
  }

  /**
   * The object subject an alias of this event belongs to now, read fresh: after a record went to an
   * alias's own subject, an object id linked meanwhile by a concurrent event must still receive it.
   */
  async objectHolderOf(tenant: TenantScope, subject: DataSubject): Promise<string | undefined> {
    for (const alias of (await this.identifiersOf(tenant, subject)).filter((id) => id.kind !== 'objectId')) {
      const holder = currentHolder(await this.aliasRows(tenant, alias.key, true));
      if (holder?.holder === 'object') return holder.subjectKey;
    }
    return undefined;
  }

  /** The object subject an alias's own subject was merged into (`~linked`), if it was. */
  async linkedTo(tenant: TenantScope, subjectKey: string): Promise<string | undefined> {
    const row = await readRow<{ subjectKey: string }>(
      await this.records(tenant),
      recordsPartition(tenant.tenantId, subjectKey),
      subjectRows.linked,
    );
    return row?.subjectKey;
  }

  private remember(cacheKey: string, rows: AliasRow[]) {
    if (this.aliasCache.size >= CACHE_LIMIT) this.aliasCache.delete(this.aliasCache.keys().next().value!);
    this.aliasCache.set(cacheKey, { rows, at: Date.now() });
  }

  private records(tenant: TenantScope): Promise<TableClient> {
    return tenant.account.table(TABLES.records);
  }

  private lookups(tenant: TenantScope): Promise<TableClient> {
    return tenant.account.table(TABLES.recordLookup);
  }
}

/** For an event without an object id: the first alias held by an object subject, else by its own. Pure. */
function pickHolder(states: readonly (readonly AliasRow[])[]): AliasRow | undefined {
  for (const holder of ['object', 'alias'] as const) {
    for (const rows of states) {
      const current = currentHolder(rows);
      if (current?.holder === holder) return current;
    }
  }
  return undefined;
}

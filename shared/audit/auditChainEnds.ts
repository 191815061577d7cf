// The two ends of a tenant's audit chain as stored: where it starts (the purge checkpoint, or genesis) and its
// tail (the `~head` of its last block), found without reading the events in between.
import type { TableClient } from '@azure/data-tables';

import { DomainError } from '../errors';
import type { TenantScope } from '../residency/tenantDirectory';
import { orAbsent } from '../storage/absent';
import { type ChainHead, GENESIS } from './auditChain';
import { auditKeys, blockOf, type CheckpointEntity, HEAD_ROW, type HeadEntity, MAX_BLOCK } from './auditRows';

/** Enough attempts that 50 writers on separate instances contending for one tenant all get through. */
export const MAX_ATTEMPTS = 60;

/** The end of a tenant's chain as last read: the position to extend and the head entity that vouches for it. */
export interface ChainTail extends ChainHead {
  /** The `~head` entity holding this position; absent at genesis or at a checkpoint with nothing after it. */
  stored?: { block: number; etag: string };
}

/** Chains are per tenant and per account: a tenant that moved geography starts over in its new account. */
export const chainKey = (tenant: TenantScope): string => `${tenant.account.label}/${tenant.tenantId}`;

const blockOfTail = (tail: ChainTail): number => tail.stored?.block ?? 0;

export class AuditChainEnds {
  /** Last known block per tenant chain; blocks only grow, so the search for the head starts here. */
  private readonly blockHints = new Map<string, number>();

  constructor(
    /** Sequences per partition. */
    readonly blockSize: number,
  ) {}

  /** Records the block an append just wrote to, where the next search for the tail starts. */
  noteBlock(chain: string, block: number): void {
    this.blockHints.set(chain, block);
  }

  /**
   * The current end of the chain. Starts from the block hint (or, cold, from the checkpoint's block) and moves
   * forward: only a full block can have a successor, so it gallops over full blocks, then bisects.
   *
   * A head that is not full is the tail as of its read. Any other answer rests on a head being absent, and a
   * purge deletes heads behind the checkpoint after moving it: so the checkpoint is read again, and if it has
   * passed the answer, the search starts over from it.
   */
  async locateTail(table: TableClient, tenant: TenantScope, knownStart?: ChainHead): Promise<ChainTail> {
    const chain = chainKey(tenant);
    let start = knownStart;
    for (let attempt = 1; ; attempt++) {
      const hint = this.blockHints.get(chain);
      let found = hint !== undefined ? await this.lastHeadFrom(table, tenant.tenantId, hint) : undefined;
      if (!found) {
        start ??= await this.readCheckpoint(table, tenant.tenantId);
        found =
          (await this.lastHeadFrom(table, tenant.tenantId, blockOf(start.sequence + 1, this.blockSize))) ??
          start;
      }
      const checkpoint =
        found.stored !== undefined && !this.isFull(found)
          ? undefined
          : await this.readCheckpoint(table, tenant.tenantId);
      if (checkpoint === undefined || checkpoint.sequence <= found.sequence) {
        if (found.stored !== undefined) this.blockHints.set(chain, found.stored.block);
        return found;
      }
      this.blockHints.delete(chain);
      start = checkpoint;
      if (attempt >= MAX_ATTEMPTS) {
        throw new DomainError('Conflict', 'The audit log is busy (a purge is running). Retry later.');
      }
    }
  }

  /** Where the chain starts: the last purged event, or genesis while nothing was purged. */
  async readCheckpoint(table: TableClient, tenantId: string): Promise<ChainHead> {
    const key = auditKeys.checkpoint(tenantId);
    const entity = await orAbsent(table.getEntity<CheckpointEntity>(key.partitionKey, key.rowKey));
    if (!entity) return GENESIS;
    return {
      sequence: entity.sequence,
      hash: entity.hash,
      ...(entity.lastEventId !== undefined ? { lastEventId: entity.lastEventId } : {}),
    };
  }

  isFull(tail: ChainTail): boolean {
    return tail.sequence >= (blockOfTail(tail) + 1) * this.blockSize && blockOfTail(tail) < MAX_BLOCK;
  }

  private async lastHeadFrom(
    table: TableClient,
    tenantId: string,
    first: number,
  ): Promise<ChainTail | undefined> {
    let last = await this.readHead(table, tenantId, first);
    if (!last) return undefined;
    let step = 1;
    let missing: number | undefined;
    while (this.isFull(last)) {
      const probe = await this.readHead(table, tenantId, blockOfTail(last) + step);
      if (!probe) {
        missing = blockOfTail(last) + step;
        break;
      }
      last = probe;
      step *= 2;
    }
    // Between a full block that exists and one that does not: bisect.
    while (missing !== undefined && missing - blockOfTail(last) > 1) {
      const middle = Math.floor((blockOfTail(last) + missing) / 2);
      const probe = await this.readHead(table, tenantId, middle);
      if (probe) last = probe;
      else missing = middle;
    }
    return last;
  }

  private async readHead(
    table: TableClient,
    tenantId: string,
    block: number,
  ): Promise<ChainTail | undefined> {
    if (block > MAX_BLOCK) return undefined;
    const entity = await orAbsent(
      table.getEntity<HeadEntity>(auditKeys.blockPartition(tenantId, block), HEAD_ROW),
    );
    if (!entity?.etag) return undefined;
    return {
      sequence: entity.sequence,
      hash: entity.hash,
      lastEventId: entity.lastEventId,
      stored: { block, etag: entity.etag },
    };
  }
}

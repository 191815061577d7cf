// The write fence (SPEC §8): what the storage layer's residency guard asks before every write to a
// geography's account. A tenant may be written only in the geography its directory entry names, and not at
// all while its migration flag is set.
//
// Fencing the caches: the fence reads the directory entry at most `maxAgeMs` ago in this process
// (RESIDENCY_FENCE_SECONDS). A migration sets the flag, then waits twice that bound before it copies
// anything, so every instance has seen the flag before the first row moves; writes already past the fence
// then land before the copy starts. After the switch, an instance that still holds the flagged entry keeps
// refusing (retried later), and one that reads afresh writes to the new geography. The personal data events
// resolve their tenant from the same cache within the same bound (TenantDirectory.resolveRecent), and a
// passive deletion waits twice the bound after it starts, as a migration does. Nothing else caches a
// tenant's geography: every other operation resolves its scope from the directory, the key caches hold keys
// by tenant whose plaintext the move does not change, and the audit chain's cached ends are kept per account.
import type { GeographyKeys } from '../crypto/keyProviders';
import type { KeyProvider } from '../crypto/keyProvider';
import { ResidencyViolation, tenantMigrating, type WriteFence } from '../storage/residencyGuard';
import type { Geography } from '../vocabulary/geographies';
import type { TenantDirectory } from './tenantDirectory';

export class DirectoryWriteFence implements WriteFence {
  constructor(
    private readonly directory: TenantDirectory,
    /** How stale a directory entry may be when a write is checked against it. */
    private readonly maxAgeMs: number,
    /** What a refused write during a move tells its caller to wait. */
    private readonly retryAfterSeconds: number,
  ) {}

  async assertWritable(tenantId: string, geography: string): Promise<void> {
    const entry = await this.directory.recent(tenantId, this.maxAgeMs);
    if (!entry)
      throw new ResidencyViolation(`Refused a write for ${tenantId}: no such tenant in the directory.`);
    if (entry.migration) throw tenantMigrating(tenantId, this.retryAfterSeconds);
    if (entry.geography !== geography) {
      throw new ResidencyViolation(
        `Refused a write for ${tenantId} in ${geography}: its data lives in ${entry.geography}.`,
      );
    }
  }
}

/** Each geography's key provider, with key creation and destruction held to the tenant's geography too. */
export function fencedKeys(keys: GeographyKeys, fence: WriteFence): GeographyKeys {
  const fenced = new Map<Geography, KeyProvider>();
  return {
    forGeography(geography) {
      let provider = fenced.get(geography);
      if (!provider) {
        const inner = keys.forGeography(geography);
        provider = {
          name: inner.name,
          wrapKey: async (tenantId, key) => {
            await fence.assertWritable(tenantId, geography);
            return inner.wrapKey(tenantId, key);
          },
          unwrapKey: (tenantId, wrapped) => inner.unwrapKey(tenantId, wrapped),
          destroyTenantKey: async (tenantId) => {
            await fence.assertWritable(tenantId, geography);
            return inner.destroyTenantKey(tenantId);
          },
        };
        fenced.set(geography, provider);
      }
      return provider;
    },
  };
}

// The global account (tenant directory, queues) and one account per open geography. A geography is open
// exactly when a storage account is configured for it. Geography accounts are guarded: once a write fence
// is set (fenceWrites), every Table and Blob write in them is checked against the tenant's geography.
import type { ServiceConfig } from '../config';
import { DomainError } from '../errors';
import { GEOGRAPHIES, type Geography } from '../vocabulary/geographies';
import type { WriteFence } from './residencyGuard';
import { StorageAccount, type StorageClientOptions } from './storageAccount';

export class StorageAccounts {
  readonly global: StorageAccount;
  private readonly byGeography = new Map<Geography, StorageAccount>();
  private readonly movers = new Map<Geography, StorageAccount>();
  private fence?: WriteFence;

  constructor(
    private readonly config: ServiceConfig['storage'],
    private readonly options: StorageClientOptions = {},
  ) {
    this.global = new StorageAccount('GLOBAL', config.global, options);
    // The guard asks whichever fence is set when the write happens (the fence needs the directory, which
    // needs these accounts, so it arrives after construction).
    const fence: WriteFence = {
      assertWritable: async (tenantId, geography) => this.fence?.assertWritable(tenantId, geography),
    };
    for (const geography of GEOGRAPHIES) {
      const setting = config.geographies[geography];
      if (setting) this.byGeography.set(geography, new StorageAccount(geography, setting, options, fence));
    }
  }

  /** From now on, every write to a geography account must pass this fence. */
  fenceWrites(fence: WriteFence): void {
    this.fence = fence;
  }

  openGeographies(): ReadonlySet<Geography> {
    return new Set(this.byGeography.keys());
  }

  /** The account of a geography; a tenant whose geography was closed since is a configuration fault. */
  geography(geography: Geography): StorageAccount {
    const account = this.byGeography.get(geography);
    if (!account)
      throw new DomainError('Internal', `No storage account is configured for geography ${geography}.`);
    return account;
  }

  /**
   * A geography's account without the residency guard: only the residency mover uses it, to copy a tenant
   * into its new geography before the directory points there and to delete the source after the switch
   * (a test keeps every other module away from it).
   */
  moverAccount(geography: Geography): StorageAccount {
    this.geography(geography);
    let account = this.movers.get(geography);
    if (!account) {
      account = new StorageAccount(geography, this.config.geographies[geography]!, this.options);
      this.movers.set(geography, account);
    }
    return account;
  }

  all(): StorageAccount[] {
    return [this.global, ...this.byGeography.values()];
  }
}

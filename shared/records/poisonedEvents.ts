// Invalid events keep no personal data in the global account (SPEC §4): the payload of an event refused as
// invalid is sealed in its tenant's geography (a blob under a key derived from the tenant's pseudonymisation
// key, deleted 30 days later by the retention purge), or dropped when its tenant is unknown. The poison
// message keeps only the reason, the event id and a reference to the sealed payload.
import { hkdfSync, randomUUID } from 'node:crypto';

import type { Clock } from '../clock';
import type { Pseudonymizer } from '../crypto/pseudonymizer';
import { open, seal } from '../crypto/sealedBox';
import { deterministicId } from '../ids';
import type { TenantDirectory, TenantScope } from '../residency/tenantDirectory';
import { type ExpiryIndex, poisonedEventExpiry } from '../retention/expiryIndex';
import { CONTAINERS } from '../storage/names';

/** What the poison message may say of an event set aside: ids, and where its sealed payload is. */
export interface SetAsideEvent {
  eventId?: string;
  tenantId?: string;
  /** `poisoned-events/<blob>` in the tenant's geography; absent when the payload was dropped. */
  reference?: string;
  /** An item of a batch poisoned on its own: its batch's event id (when fit to be shown) and its place. */
  batch?: { eventId?: string; item: number };
}

/** An item of a batch poisoned on its own: the batch's event id and the item's place in it. */
export interface BatchItemOrigin {
  eventId: string;
  item: number;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
/** An event id fit to be shown: as the schema allows it, printable. */
const EVENT_ID = /^[\x20-\x7e]{1,200}$/;

export class PoisonedEvents {
  constructor(
    private readonly directory: TenantDirectory,
    private readonly pseudonymizer: Pseudonymizer,
    private readonly expiry: ExpiryIndex,
    private readonly clock: Clock,
  ) {}

  /**
   * Seals the event in its tenant's geography, when the tenant is one whose data the service holds. An item
   * of a batch is sealed under a name derived from its batch's event id and its place: poisoned again when
   * the batch is redelivered, it overwrites the same blob (and expiry entry, the same day), and its second
   * poison message carries the same reference.
   */
  async setAside(message: unknown, batch?: BatchItemOrigin): Promise<SetAsideEvent> {
    const { tenantId, eventId } = idsOf(message);
    const ids: SetAsideEvent = {
      ...(eventId ? { eventId } : {}),
      ...(tenantId ? { tenantId } : {}),
      ...(batch
        ? { batch: { ...(EVENT_ID.test(batch.eventId) ? { eventId: batch.eventId } : {}), item: batch.item } }
        : {}),
    };
    const entry = tenantId ? await this.directory.get(tenantId) : undefined;
    if (!entry || entry.status === 'purged' || entry.status === 'purging') return ids;
    const tenant = this.directory.scopeOf(entry);
    const now = this.clock();
    const blobName = batch
      ? `${tenant.tenantId}/batch-items/${deterministicId(tenant.tenantId, batch.eventId, String(batch.item))}`
      : `${tenant.tenantId}/${now.toISOString().slice(0, 10)}/${randomUUID()}`;
    // The expiry entry first: a payload is never stored without what deletes it.
    await this.expiry.add(tenant, [poisonedEventExpiry(blobName, now)]);
    const sealed = seal(await this.key(tenant), JSON.stringify(message) ?? 'null', aadOf(tenant, blobName));
    const container = await tenant.account.container(CONTAINERS.poisonedEvents);
    await container.getBlockBlobClient(blobName).upload(sealed, Buffer.byteLength(sealed), {
      blobHTTPHeaders: { blobContentType: 'text/plain' },
    });
    return { ...ids, reference: `${CONTAINERS.poisonedEvents}/${blobName}` };
  }

  /** The payload of an event set aside (for an operator investigating it), or undefined once deleted. */
  async read(tenant: TenantScope, reference: string): Promise<unknown> {
    const blobName = reference.slice(`${CONTAINERS.poisonedEvents}/`.length);
    if (!blobName.startsWith(`${tenant.tenantId}/`)) return undefined;
    const container = await tenant.account.container(CONTAINERS.poisonedEvents);
    try {
      const sealed = (await container.getBlobClient(blobName).downloadToBuffer()).toString('utf8');
      return JSON.parse(open(await this.key(tenant), sealed, aadOf(tenant, blobName)).toString('utf8'));
    } catch (error) {
      if ((error as { statusCode?: number }).statusCode === 404) return undefined;
      throw error;
    }
  }

  private async key(tenant: TenantScope): Promise<Buffer> {
    const base = await this.pseudonymizer.keyFor(tenant);
    return Buffer.from(hkdfSync('sha256', base, Buffer.alloc(0), 'poisoned-event', 32));
  }
}

const aadOf = (tenant: TenantScope, blobName: string) => `${tenant.tenantId}|${blobName}`;

/** The tenant and event ids a message claims, only where they are of their form. Pure. */
function idsOf(message: unknown): { tenantId?: string; eventId?: string } {
  if (typeof message !== 'object' || message === null) return {};
  const { tenantId, eventId } = message as { tenantId?: unknown; eventId?: unknown };
  return {
    ...(typeof tenantId === 'string' && UUID.test(tenantId) ? { tenantId: tenantId.toLowerCase() } : {}),
    ...(typeof eventId === 'string' && EVENT_ID.test(eventId) ? { eventId } : {}),
  };
}

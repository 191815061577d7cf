// Storage faults on demand, through the SDKs' own extension points: a pipeline policy for Table clients and
// a request policy for Blob and Queue clients, sharing one count of storage writes. A test arms a fault at
// the Nth write and runs a path: the write is made, and then the caller is told it failed — what a process
// that dies right after that write leaves behind (N = 0: before any write).
import { createHttpHeaders, type PipelinePolicy, RestError } from '@azure/core-rest-pipeline';
import type { RequestPolicy, RequestPolicyFactory, WebResource } from '@azure/storage-blob';

import type { StorageClientOptions } from '../../shared/storage/storageAccount';

const WRITES = new Set(['POST', 'PUT', 'PATCH', 'MERGE', 'DELETE']);

export class InjectedCrash extends Error {
  override readonly name = 'InjectedCrash';
}

export class StorageFaults {
  /** Writes made since the last reset. */
  writes = 0;
  /** Writes and their targets since the last reset, for a failing test to say where it stopped. */
  readonly log: string[] = [];
  /** 0: before the first write; n: right after the nth; undefined: no fault. */
  private crashAt: number | undefined;

  /** While set, every write is refused before it is sent: the process died (`crashAfterWrite` `dies`). */
  private dead = false;
  private diesAtCrash = false;

  /**
   * The next path dies right after its Nth write (0: before its first). With `dies`, no write of it is sent
   * afterwards either, as when the process stops: writes in flight in parallel still land, none start.
   */
  crashAfterWrite(n: number, options: { dies?: boolean } = {}): void {
    this.reset();
    this.crashAt = n;
    this.diesAtCrash = options.dies ?? false;
  }

  reset(): void {
    this.dead = false;
    this.diesAtCrash = false;
    this.writes = 0;
    this.log.length = 0;
    this.crashAt = undefined;
    this.faultsOn = undefined;
  }

  /** Faults injected at random into Table requests, each try on its own (the SDK's retries see them). */
  readonly injected: Record<string, number> = {};
  /** The faults' generator and rate, while they are on. */
  faultsOn: { random: () => number; rate: number } | undefined;

  /**
   * From now on, each storage request try fails with probability `rate`, drawn from a generator seeded with
   * `seed`: 500, 503 with and without Retry-After, a timeout, or (Table) 412 on a conditional write.
   */
  flaky(seed: number, rate: number): void {
    this.faultsOn = { random: mulberry32(seed), rate };
  }

  stopFaults(): void {
    this.faultsOn = undefined;
  }

  private readonly flakyPolicy: PipelinePolicy = {
    name: 'flakyStorage',
    sendRequest: async (request, next) => {
      const flaky = this.faultsOn;
      if (!flaky || flaky.random() >= flaky.rate) return next(request);
      const conditional = (request.headers.get('if-match') ?? '*') !== '*';
      const kinds = ['500', '503', '503-retry-after', 'timeout', ...(conditional ? ['412'] : [])];
      const kind = kinds[Math.floor(flaky.random() * kinds.length)]!;
      this.injected[kind] = (this.injected[kind] ?? 0) + 1;
      if (kind === 'timeout') {
        throw new RestError('The request timed out (injected).', { code: 'ETIMEDOUT', request });
      }
      const status = Number(kind.slice(0, 3));
      return {
        request,
        status,
        headers: createHttpHeaders(kind === '503-retry-after' ? { 'retry-after': '0' } : {}),
        bodyAsText: JSON.stringify({
          'odata.error': { code: 'Injected', message: { value: `injected ${kind}` } },
        }),
      };
    },
  };

  /** Storage options that route every Table, Blob and Queue request of a service through these faults. */
  options(): StorageClientOptions {
    return {
      tablePolicies: [
        { policy: this.tablePolicy, position: 'perCall' },
        { policy: this.flakyPolicy, position: 'perRetry' },
      ],
      blobPolicies: [this.requestPolicy, this.flakyRequestPolicy],
      queuePolicies: [this.requestPolicy, this.flakyRequestPolicy],
    };
  }

  private async around<T>(method: string, url: string, send: () => Promise<T>): Promise<T> {
    if (!WRITES.has(method.toUpperCase()) || isQueueRead(method, url)) return send();
    if (this.dead) throw new InjectedCrash('the process stopped before this write');
    if (this.crashAt === 0) {
      this.crashAt = undefined;
      this.dead = this.diesAtCrash;
      throw new InjectedCrash('crashed before the first write');
    }
    const response = await send();
    this.writes++;
    this.log.push(`${method} ${new URL(url).pathname.slice(0, 120)}`);
    if (this.writes === this.crashAt) {
      this.crashAt = undefined;
      this.dead = this.diesAtCrash;
      throw new InjectedCrash(`crashed right after write ${this.writes}: ${this.log.at(-1)}`);
    }
    return response;
  }

  private readonly tablePolicy: PipelinePolicy = {
    name: 'storageFaults',
    sendRequest: (request, next) => this.around(request.method, request.url, () => next(request)),
  };

  /**
   * The Blob and Queue SDKs place a request policy factory inside their retries only when it is an
   * `InjectorPolicyFactory` (by constructor name, their own test seam): so this one is, and its faults are
   * retried as real ones would be.
   */
  private readonly flakyRequestPolicy: RequestPolicyFactory = new (class InjectorPolicyFactory {
    constructor(private readonly faults: StorageFaults) {}
    create(next: RequestPolicy): RequestPolicy {
      return {
        sendRequest: async (request: WebResource) => {
          const flaky = this.faults.faultsOn;
          if (!flaky || flaky.random() >= flaky.rate) return next.sendRequest(request);
          const kinds = ['500', '503', 'timeout'];
          const kind = `blob-or-queue ${kinds[Math.floor(flaky.random() * kinds.length)]!}`;
          this.faults.injected[kind] = (this.faults.injected[kind] ?? 0) + 1;
          if (kind.endsWith('timeout')) {
            throw new RestError('The request timed out (injected).', { code: 'ETIMEDOUT' });
          }
          return { request, status: Number(kind.slice(-3)), headers: request.headers, bodyAsText: '' };
        },
      };
    }
  })(this);

  private readonly requestPolicy: RequestPolicyFactory = {
    create: (next: RequestPolicy): RequestPolicy => ({
      sendRequest: (request: WebResource) =>
        this.around(request.method, request.url, () => next.sendRequest(request)),
    }),
  };
}

/** Receiving a queue message is a request with side effects, but it is not a write of the service's. */
const isQueueRead = (method: string, url: string) =>
  method.toUpperCase() === 'DELETE' && url.includes('/messages/') && url.includes('popreceipt');

/** A small seeded generator (mulberry32): the same seed gives the same faults on every run. */
function mulberry32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

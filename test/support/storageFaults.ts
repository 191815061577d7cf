// Storage faults on demand, through the SDKs' own extension points: a pipeline policy for Table clients and
// a request policy for Blob and Queue clients, sharing one count of storage writes. A test arms a fault at
// the Nth write and runs a path: the write is made, and then the caller is told it failed — what a process
// that dies right after that write leaves behind (N = 0: before any write).
import type { PipelinePolicy } from '@azure/core-rest-pipeline';
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

  /** The next path dies right after its Nth write (0: before its first). */
  crashAfterWrite(n: number): void {
    this.reset();
    this.crashAt = n;
  }

  reset(): void {
    this.writes = 0;
    this.log.length = 0;
    this.crashAt = undefined;
  }

  /** Storage options that route every Table, Blob and Queue request of a service through these faults. */
  options(): StorageClientOptions {
    return {
      tablePolicies: [{ policy: this.tablePolicy, position: 'perCall' }],
      blobPolicies: [this.requestPolicy],
      queuePolicies: [this.requestPolicy],
    };
  }

  private async around<T>(method: string, url: string, send: () => Promise<T>): Promise<T> {
    if (!WRITES.has(method.toUpperCase()) || isQueueRead(method, url)) return send();
    if (this.crashAt === 0) {
      this.crashAt = undefined;
      throw new InjectedCrash('crashed before the first write');
    }
    const response = await send();
    this.writes++;
    this.log.push(`${method} ${new URL(url).pathname.slice(0, 120)}`);
    if (this.writes === this.crashAt) {
      this.crashAt = undefined;
      throw new InjectedCrash(`crashed right after write ${this.writes}: ${this.log.at(-1)}`);
    }
    return response;
  }

  private readonly tablePolicy: PipelinePolicy = {
    name: 'storageFaults',
    sendRequest: (request, next) => this.around(request.method, request.url, () => next(request)),
  };

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

import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';

import type { HttpFunction } from '../../shared/hosting/functionDefinition';
import { echoRoute, startHost, stopHosts } from './localHostFixtures';

afterEach(stopHosts);

/** An HTTP function whose GET answers the stream `open()` returns, as a package download does. */
const streamRoute = (name: string, route: string, open: () => Readable): HttpFunction => ({
  kind: 'http',
  name,
  route,
  operations: {
    GET: {
      operationId: name,
      summary: name,
      access: { kind: 'public' },
      responses: [],
      handle: async () => ({ status: 200, headers: { 'content-type': 'application/zip' }, body: open() }),
    },
  },
});

const PACKAGE_CHUNK_BYTES = 64 * 1024;

/**
 * A package that exists only as it is read: each chunk is made when the stream asks for it, and hashed, so
 * `produced` says how far the reader has pulled. With `failAfter` it breaks after that many chunks.
 */
class LazyPackage extends Readable {
  produced = 0;
  private readonly hash = createHash('sha256');

  constructor(
    readonly chunks: number,
    private readonly failAfter?: number,
  ) {
    super();
  }

  override _read(): void {
    if (this.produced === this.failAfter) {
      this.destroy(new Error('The package blob could not be read.'));
    } else if (this.produced === this.chunks) {
      this.push(null);
    } else {
      const chunk = randomBytes(PACKAGE_CHUNK_BYTES);
      this.hash.update(chunk);
      this.produced++;
      this.push(chunk);
    }
  }

  /** SHA-256 of everything produced; call once, after the end. */
  digest(): string {
    return this.hash.digest('hex');
  }
}

/** Reads a fetch body chunk by chunk, hashing it; `onChunk` sees each chunk as it arrives. */
async function readBodyHashing(response: Response, onChunk: (chunk: Uint8Array) => void = () => undefined) {
  const hash = createHash('sha256');
  let bytes = 0;
  const reader = response.body!.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return { bytes, sha256: hash.digest('hex') };
    onChunk(value);
    hash.update(value);
    bytes += value.length;
  }
}

describe('LocalHost streamed responses', () => {
  it("sends every byte of a 16 MB stream body in order, chunked, with the handler's headers", async () => {
    let sent!: LazyPackage;
    const { baseUrl } = await startHost([
      streamRoute('packageDownload', 'packages/{packageId}', () => (sent = new LazyPackage(256))),
    ]);

    const response = await fetch(`${baseUrl}/api/packages/p-1`);
    const received = await readBodyHashing(response);

    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('application/zip');
    expect(response.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
    expect(response.headers.get('content-length')).toBeNull();
    expect(response.headers.get('transfer-encoding')).toBe('chunked');
    expect(received).toEqual({ bytes: 256 * PACKAGE_CHUNK_BYTES, sha256: sent.digest() });
  });

  it('delivers the headers and a first body chunk before the stream has produced its last chunk', async () => {
    let sent!: LazyPackage;
    const { baseUrl } = await startHost([
      streamRoute('packageDownload', 'packages/{packageId}', () => (sent = new LazyPackage(256))),
    ]);

    const response = await fetch(`${baseUrl}/api/packages/p-1`);
    const producedAtHeaders = sent.produced;
    let producedAtFirstChunk: number | undefined;
    await readBodyHashing(response, () => {
      producedAtFirstChunk ??= sent.produced;
    });

    expect(producedAtHeaders).toBeLessThan(sent.chunks);
    expect(producedAtFirstChunk).toBeLessThan(sent.chunks);
    expect(sent.produced).toBe(sent.chunks);
  });

  it('breaks the connection when the stream body fails after the headers, so the client read fails', async () => {
    const { baseUrl, log } = await startHost([
      streamRoute('packageDownload', 'packages/{packageId}', () => new LazyPackage(256, 20)),
    ]);

    const response = await fetch(`${baseUrl}/api/packages/p-1`);

    expect(response.status).toBe(200);
    await expect(readBodyHashing(response)).rejects.toThrow();
    expect(log).toContainEqual(expect.stringMatching(/^error: .*The package blob could not be read\./));
  });

  it('still sends a JSON body whole, with its content-length', async () => {
    const { baseUrl } = await startHost([echoRoute('dsrRead', 'tenants/{tenantId}/dsr/{requestId}')]);

    const response = await fetch(`${baseUrl}/api/tenants/T1/dsr/r1`);
    const text = await response.text();

    expect(response.headers.get('content-length')).toBe(String(Buffer.byteLength(text)));
    expect(response.headers.get('transfer-encoding')).toBeNull();
    expect(JSON.parse(text)).toEqual({ fn: 'dsrRead', params: { tenantId: 'T1', requestId: 'r1' } });
  });
});

// Between Node's HTTP server and the functions: a request's headers and body read off the connection, and a
// function's response written back the way the @azure/functions library converts it, streams as streams.
import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { ReadableStream } from 'node:stream/web';

import { HttpResponse, type HttpResponseInit } from '@azure/functions';

import { describeError } from './hostLog';

/** Request bodies are buffered up to this size; the HTTP edge refuses anything over 64 KiB anyway. */
const MAX_BUFFERED_BODY_BYTES = 1024 * 1024;

/** Statuses whose responses carry no body; HttpResponse drops one given with them. */
const NULL_BODY_STATUSES: ReadonlySet<number> = new Set([204, 205, 304]);

export function headersOf(req: IncomingMessage): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(req.headers)) {
    if (value !== undefined) headers[name] = Array.isArray(value) ? value.join(', ') : value;
  }
  return headers;
}

/** Buffers the body up to MAX_BUFFERED_BODY_BYTES and discards the rest; the edge answers 413 long before. */
export function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      if (size < MAX_BUFFERED_BODY_BYTES) chunks.push(chunk.subarray(0, MAX_BUFFERED_BODY_BYTES - size));
      size += chunk.length;
    });
    req.once('end', () => resolve(Buffer.concat(chunks)));
    req.once('error', reject);
  });
}

/**
 * Writes a function's response the way the @azure/functions library converts it (jsonBody, streams, ...).
 * A stream body is piped to the client as it is read, as the Azure host does with enableHttpStream.
 */
export async function writeResponse(res: ServerResponse, init: HttpResponseInit): Promise<void> {
  const stream = init.jsonBody === undefined ? streamOf(init.body) : undefined;
  if (stream && !NULL_BODY_STATUSES.has(init.status ?? 200)) return writeStreamedResponse(res, init, stream);
  // Nobody will read it: let its source (a blob download, say) close now.
  stream?.destroy();
  const response = new HttpResponse(stream ? { ...init, body: undefined } : init);
  const body = Buffer.from(await response.arrayBuffer());
  const headers = responseHeaders(response);
  if (response.status !== 204 && response.status !== 304) headers['content-length'] = String(body.length);
  res.writeHead(response.status, headers);
  res.end(body);
}

/**
 * Sends the headers, then the body with backpressure: the stream is read only as fast as the client takes
 * it, and never held whole. Without a content-length of the handler's, Node sends it chunked.
 */
async function writeStreamedResponse(
  res: ServerResponse,
  init: HttpResponseInit,
  body: Readable,
): Promise<void> {
  const response = new HttpResponse({ ...init, body: undefined });
  res.writeHead(response.status, responseHeaders(response));
  // The first bytes of a decrypted download may be a while coming; the client learns the status meanwhile.
  res.flushHeaders();
  try {
    await pipeline(body, res);
  } catch (error) {
    // The status is sent: only a broken connection tells the client that the body is incomplete, where a
    // clean end would pass a truncated package off as whole and a kept-open one would leave it waiting.
    res.destroy();
    throw new Error(`The response body failed after its headers were sent: ${describeError(error)}`, {
      cause: error,
    });
  }
}

/** A body that is a stream (Node Readable, web ReadableStream, or async iterable of bytes) as a Node Readable. */
function streamOf(body: HttpResponseInit['body']): Readable | undefined {
  if (body instanceof Readable) return body;
  if (body instanceof ReadableStream) return Readable.fromWeb(body);
  if (typeof body === 'object' && body !== null && Symbol.asyncIterator in body) {
    return Readable.from(body as AsyncIterable<Uint8Array>);
  }
  return undefined;
}

function responseHeaders(response: HttpResponse): OutgoingHttpHeaders {
  const headers: OutgoingHttpHeaders = {};
  response.headers.forEach((value, name) => {
    if (name !== 'set-cookie') headers[name] = value;
  });
  const cookies = response.headers.getSetCookie();
  if (cookies.length > 0) headers['set-cookie'] = cookies;
  return headers;
}

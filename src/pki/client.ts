/**
 * The directory's HTTP client, for nodes, clients and authorities: upload a descriptor to every
 * authority, fetch a document and gather its signatures from several authorities. Uses the
 * platform `fetch` (injectable), bounds every request in time and every response in size.
 *
 * Portable: no `node:` imports (fetch, AbortController and web streams are in browsers and Node).
 */
import { BackchannelError } from '../errors.js';
import { abytes, aint, concatBytes, toHex } from '../util/bytes.js';
import { MAX_DESCRIPTOR_LENGTH } from './descriptor.js';
import { MAX_SIGNED_DOCUMENT_LENGTH, decodeDocument, decodeSignedDocument, documentHash, validSignatures } from './document.js';
import type { Ed25519 } from './ed25519.js';
import type { AuthorityInfo, ConsensusDocument, DocumentSignature, SignedDocument } from './types.js';

/** Default time allowed for one request, headers and body. */
export const DEFAULT_TIMEOUT_MS = 5000;
/** Largest response body read from an authority other than a document (JSON outcomes, errors). */
const MAX_SMALL_RESPONSE = 64 * 1024;

/**
 * The timers a request needs: the timer half of ops/clock.ts's Clock (any Clock fits), declared here
 * so that this module stays free of Node typings.
 */
export interface Timers {
  setTimer(fn: () => void, ms: number): unknown;
  clearTimer(handle: unknown): void;
}

/** The platform's timers, when none are given. */
const platformTimers: Timers = {
  setTimer: (fn, ms) => setTimeout(fn, ms),
  clearTimer: (handle) => clearTimeout(handle as Parameters<typeof clearTimeout>[0]),
};

/** How requests are made. */
export interface HttpOptions {
  /** Default: the global fetch. */
  readonly fetch?: typeof fetch;
  /** Per request. Default DEFAULT_TIMEOUT_MS. */
  readonly timeoutMs?: number;
  /** Timers for the timeouts. Default: the platform's setTimeout. */
  readonly clock?: Timers;
  /** Aborts every request when fired. */
  readonly signal?: AbortSignal;
}

/** A response: status and body, read within the size limit. */
export interface HttpResponse {
  readonly status: number;
  readonly body: Uint8Array;
}

function fetchError(message: string, cause?: unknown): BackchannelError {
  return new BackchannelError('ERR_PKI_FETCH', `pki: ${message}`, cause === undefined ? {} : { cause });
}

/** Reads a body, refusing (and cancelling) it as soon as it passes `limit` bytes. */
async function readLimited(res: Response, limit: number): Promise<Uint8Array> {
  const declared = res.headers.get('content-length');
  if (declared !== null && Number(declared) > limit) {
    await res.body?.cancel().catch(() => undefined);
    throw fetchError('response too large');
  }
  if (res.body === null) return new Uint8Array(0);
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.length;
    if (total > limit) {
      await reader.cancel().catch(() => undefined);
      throw fetchError('response too large');
    }
    chunks.push(value);
  }
  return concatBytes(...chunks);
}

/**
 * One request with a timeout and a bounded response body. Any status is returned; only failing to
 * get a complete response (network error, timeout, abort, oversized body) throws.
 * @throws {BackchannelError} ERR_PKI_FETCH.
 */
export async function httpRequest(
  url: string,
  init: { method: 'GET' | 'POST'; body?: Uint8Array; maxBytes: number },
  opts: HttpOptions = {},
): Promise<HttpResponse> {
  const f = opts.fetch ?? globalThis.fetch;
  const clock = opts.clock ?? platformTimers;
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  aint('timeoutMs', timeoutMs, 1, 24 * 3600 * 1000);
  const ac = new AbortController();
  const onAbort = (): void => ac.abort();
  if (opts.signal?.aborted) throw fetchError('request aborted');
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  const timer = clock.setTimer(() => ac.abort(), timeoutMs);
  try {
    const reqInit: RequestInit = { method: init.method, signal: ac.signal, redirect: 'error' };
    if (init.body !== undefined) {
      reqInit.body = init.body as NonNullable<RequestInit['body']>;
      reqInit.headers = { 'content-type': 'application/octet-stream' };
    }
    const res = await f(url, reqInit);
    const body = await readLimited(res, init.maxBytes);
    return { status: res.status, body };
  } catch (err) {
    if (err instanceof BackchannelError) throw err;
    throw fetchError(ac.signal.aborted ? 'request timed out or was aborted' : 'request failed', err);
  } finally {
    clock.clearTimer(timer);
    opts.signal?.removeEventListener('abort', onAbort);
  }
}

/** The `error` code of a JSON error body, or null. */
function errorCode(body: Uint8Array): string | null {
  try {
    const parsed: unknown = JSON.parse(new TextDecoder().decode(body));
    if (typeof parsed === 'object' && parsed !== null && 'error' in parsed && typeof parsed.error === 'string') return parsed.error;
  } catch {
    // not JSON
  }
  return null;
}

/** What one authority said to an upload. */
export interface UploadOutcome {
  /** The authority's name. */
  readonly authority: string;
  /** True for a 2xx answer. */
  readonly ok: boolean;
  /** The HTTP status, or null when no answer came. */
  readonly status: number | null;
  /** The error code the authority answered with (e.g. ERR_PKI_UNAUTHORIZED), or ERR_PKI_FETCH when it did not answer; null on success. */
  readonly error: string | null;
}

/**
 * Uploads a signed descriptor to every authority at once. Never throws for an authority that is
 * down or refuses: each one's outcome is in the result, in the order of `authorities`.
 * @throws {TypeError|RangeError} for a descriptor that is not bytes or is too long.
 */
export async function uploadDescriptor(authorities: readonly AuthorityInfo[], bytes: Uint8Array, opts: HttpOptions = {}): Promise<UploadOutcome[]> {
  abytes('bytes', bytes);
  if (bytes.length > MAX_DESCRIPTOR_LENGTH) throw new RangeError(`"bytes" longer than ${MAX_DESCRIPTOR_LENGTH}`);
  return Promise.all(
    authorities.map(async (a): Promise<UploadOutcome> => {
      try {
        const res = await httpRequest(`${a.url}/v1/descriptor`, { method: 'POST', body: bytes, maxBytes: MAX_SMALL_RESPONSE }, opts);
        const ok = res.status >= 200 && res.status < 300;
        return { authority: a.name, ok, status: res.status, error: ok ? null : (errorCode(res.body) ?? `HTTP_${res.status}`) };
      } catch {
        return { authority: a.name, ok: false, status: null, error: 'ERR_PKI_FETCH' };
      }
    }),
  );
}

/** Options of fetchDocument. */
export interface FetchDocumentOptions extends HttpOptions {
  readonly authorities: readonly AuthorityInfo[];
  readonly threshold: number;
  /** The epoch wanted, or 'current': each authority's newest unexpired document (the newest that reaches the threshold wins). */
  readonly epoch: number | 'current';
  readonly ed: Ed25519;
  /** Largest response read. Default MAX_SIGNED_DOCUMENT_LENGTH. */
  readonly maxBytes?: number;
}

interface Group {
  readonly bytes: Uint8Array;
  readonly document: ConsensusDocument;
  readonly signatures: Map<string, DocumentSignature>;
}

/**
 * Fetches a document from every authority at once and merges the valid signatures that the answers
 * carry for the same document bytes. For a numbered epoch it returns as soon as one document has
 * `threshold` valid signatures by distinct listed authorities (and cancels the other requests).
 * @throws {BackchannelError} ERR_PKI_FETCH when no authority answered with a document (for that
 *   epoch); ERR_PKI_THRESHOLD when documents came but none with enough valid signatures.
 * @example const signed = await fetchDocument({ authorities, threshold: 2, epoch: 1234, ed: portableEd25519 });
 */
export async function fetchDocument(opts: FetchDocumentOptions): Promise<SignedDocument> {
  const { authorities, threshold, epoch, ed } = opts;
  aint('threshold', threshold, 1, Math.max(1, authorities.length));
  if (epoch !== 'current') aint('epoch', epoch, 0, Number.MAX_SAFE_INTEGER);
  const maxBytes = opts.maxBytes ?? MAX_SIGNED_DOCUMENT_LENGTH;
  const path = `/v1/document/${epoch === 'current' ? 'current' : String(epoch)}`;
  const groups = new Map<string, Group>();
  const done = new AbortController();
  const signal = opts.signal === undefined ? done.signal : AbortSignal.any([opts.signal, done.signal]);
  let sawDocument = false;
  let winner: Group | undefined;

  const ask = async (a: AuthorityInfo): Promise<void> => {
    let res: HttpResponse;
    try {
      res = await httpRequest(`${a.url}${path}`, { method: 'GET', maxBytes }, { ...opts, signal });
    } catch {
      return;
    }
    if (res.status !== 200 || winner !== undefined) return;
    let container: { bytes: Uint8Array; signatures: DocumentSignature[] };
    let document: ConsensusDocument;
    try {
      container = decodeSignedDocument(res.body);
      document = decodeDocument(container.bytes);
    } catch {
      return; // a malformed answer counts as no answer
    }
    if (epoch !== 'current' && document.epoch !== epoch) return;
    sawDocument = true;
    const hash = documentHash(container.bytes);
    const key = toHex(hash);
    const g = groups.get(key) ?? { bytes: container.bytes, document, signatures: new Map<string, DocumentSignature>() };
    groups.set(key, g);
    const fresh = container.signatures.filter((s) => !g.signatures.has(toHex(s.authority)));
    for (const s of validSignatures(hash, fresh, authorities, ed)) g.signatures.set(toHex(s.authority), s);
    if (epoch !== 'current' && g.signatures.size >= threshold) {
      winner = g;
      done.abort();
    }
  };

  await Promise.all(authorities.map(ask));
  if (winner === undefined && epoch === 'current') {
    for (const g of groups.values()) {
      if (g.signatures.size >= threshold && (winner === undefined || g.document.epoch > winner.document.epoch)) winner = g;
    }
  }
  if (winner !== undefined) {
    const signatures = [...winner.signatures.values()].sort((x, y) => (toHex(x.authority) < toHex(y.authority) ? -1 : 1));
    return { document: winner.document, bytes: winner.bytes, signatures };
  }
  const what = epoch === 'current' ? 'the current epoch' : `epoch ${epoch}`;
  if (!sawDocument) throw fetchError(`no authority answered with a document for ${what}`);
  throw new BackchannelError('ERR_PKI_THRESHOLD', `pki: no document for ${what} reached ${threshold} valid signatures`);
}

/**
 * The page side of `npm run bench -- web` (bench/web.ts): run in real Chromium, it measures
 *
 * - each primitive the client's packets use, at the sizes Sphinx uses them, with the portable
 *   backend (@noble, synchronous) and with WebCrypto (asynchronous): awaited one call at a time,
 *   and batched (BATCH calls in flight, then awaited together), in alternating batches with the
 *   @noble calls so that a shared machine's load falls on both alike. WebCrypto takes keys only as
 *   CryptoKey objects, and Sphinx's keys change with every packet and hop, so each WebCrypto call
 *   includes the import of its keys, as a WebCrypto backend would have to do;
 * - the engine's CPU per packet in the page: the real `Client` (src/client/client.ts) with the
 *   portable backend and the record store in memory, driven in virtual time so that only the
 *   building counts, idle (drop and loop cover) and with real fragments in every send slot. A
 *   counting wrapper of the backend says how many calls of each primitive a packet makes;
 * - what the fetch side costs per entry, through the same functions the engine calls: opening a
 *   sealed frame to our mailbox (src/client/envelope.ts) and decrypting an acknowledgement that
 *   came back through its SURB (Sphinx.decryptSurbPayload), with inputs made by a real SURB
 *   and real unwrapping through every hop.
 *
 * From the counts and the per-call times, the CPU per packet with WebCrypto standing behind the
 * same calls is estimated (the measured engine time, less the counted calls at @noble's time, plus
 * the same calls at WebCrypto's batched time); the CryptoBackend interface is synchronous, so the
 * engine cannot run on WebCrypto as such. What is built instead is measured too: the same engine
 * with the header-key pool over WebCrypto's X25519 (src/client/header-pool.ts), in turns with the
 * @noble engine, its ticks and its refills timed apart. Nothing here asserts a time.
 */
import { sha256, sha512 } from '@noble/hashes/sha2.js';
import { Client } from '../../src/client/client.js';
import type { GatewayLink } from '../../src/client/client.js';
import { encodeAddress } from '../../src/client/address.js';
import { open, seal } from '../../src/client/envelope.js';
import { loopFrame } from '../../src/client/frames.js';
import { RecordClientStore } from '../../src/client/record-store.js';
import { DEFAULT_PARAMS } from '../../src/config/params.js';
import { portableBackend } from '../../src/crypto/portable.js';
import { webCryptoX25519 } from '../../src/crypto/async-x25519.js';
import type { AsyncX25519 } from '../../src/crypto/async-x25519.js';
import type { CryptoBackend } from '../../src/crypto/types.js';
import { portableNoiseCrypto } from '../../src/noise/crypto-portable.js';
import { VirtualClock } from '../_virtual-clock.js';
import type { Logger } from '../../src/ops/logger.js';
import { epochAt } from '../../src/pki/document.js';
import { pathHops } from '../../src/pki/route.js';
import type { DocumentNode, NetworkParameters, SignedDocument } from '../../src/pki/types.js';
import { geometryFromParameters } from '../../src/sphinx/geometry.js';
import { clampedRepresentative, clampedScalarModL, mulModL } from '../../src/sphinx/_curve25519.js';
import { hopKeys } from '../../src/sphinx/header-keys.js';
import type { HopKeys } from '../../src/sphinx/header-keys.js';
import { blindingFactor, deriveKeys } from '../../src/sphinx/kdf.js';
import type { PacketKeys } from '../../src/sphinx/kdf.js';
import { Sphinx } from '../../src/sphinx/sphinx.js';
import { idKey } from '../../src/util/bytes.js';
import type { EngineFigures, FetchFigures, HeaderFigures, PrimitiveFigures, WebBenchFigures } from '../web-figures.js';

/** WebCrypto calls in flight at once in the batched runs. */
const BATCH = 32;
const BATCH_MS = 150;
const BATCHES = 7;

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
};

/** Microseconds per call of a synchronous `fn`: the median of BATCHES timed batches after a calibration. */
function timeSync(fn: () => void): number {
  let n = 1;
  for (;;) {
    const t0 = performance.now();
    for (let i = 0; i < n; i++) fn();
    const dt = performance.now() - t0;
    if (dt >= BATCH_MS / 4) {
      n = Math.max(1, Math.round((n * BATCH_MS) / dt));
      break;
    }
    n *= 2;
  }
  const per: number[] = [];
  for (let b = 0; b < BATCHES; b++) {
    const t0 = performance.now();
    for (let i = 0; i < n; i++) fn();
    per.push(((performance.now() - t0) * 1000) / n);
  }
  return median(per);
}

/** One round of `inFlight` calls of an asynchronous `fn` (one awaited call when 1). */
function rounds(fn: () => Promise<unknown>, inFlight: number): () => Promise<void> {
  return async () => {
    if (inFlight === 1) await fn();
    else await Promise.all(Array.from({ length: inFlight }, fn));
  };
}

/** How many rounds of `round` fill one batch. */
async function calibrate(round: () => Promise<void> | void): Promise<number> {
  let n = 1;
  for (;;) {
    const t0 = performance.now();
    for (let i = 0; i < n; i++) await round();
    const dt = performance.now() - t0;
    if (dt >= BATCH_MS / 4) return Math.max(1, Math.round((n * BATCH_MS) / dt));
    n *= 2;
  }
}

/**
 * Microseconds per call of each of `fns` (each a round of `calls[i]` calls), timed in alternating
 * batches (a, b, c, a, b, c, ...): load on a shared machine that comes and goes falls on all of
 * them alike, so their ratios hold better than with one timed after the other. Medians.
 */
async function timeAlternating(fns: ReadonlyArray<() => Promise<void> | void>, calls: readonly number[]): Promise<number[]> {
  const n: number[] = [];
  for (const f of fns) n.push(await calibrate(f));
  const per: number[][] = fns.map(() => []);
  for (let b = 0; b < BATCHES; b++) {
    for (const [i, f] of fns.entries()) {
      const t0 = performance.now();
      for (let r = 0; r < n[i]!; r++) await f();
      per[i]!.push(((performance.now() - t0) * 1000) / (n[i]! * calls[i]!));
    }
  }
  return per.map(median);
}

const subtle = globalThis.crypto.subtle;
const rand = (n: number): Uint8Array => portableBackend.randomBytes(n);
/** PKCS #8 for an X25519 private key (RFC 8410): this prefix, then the 32 bytes. */
const PKCS8_X25519 = Uint8Array.of(0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x6e, 0x04, 0x22, 0x04, 0x20);
const BASE_POINT = Uint8Array.of(9, ...new Uint8Array(31));

function pkcs8(scalar: Uint8Array): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(PKCS8_X25519.length + 32);
  out.set(PKCS8_X25519);
  out.set(scalar, PKCS8_X25519.length);
  return out;
}

const buf = (b: Uint8Array): Uint8Array<ArrayBuffer> => new Uint8Array(b);

async function webX25519(scalar: Uint8Array, point: Uint8Array): Promise<ArrayBuffer> {
  const [priv, pub] = await Promise.all([
    subtle.importKey('pkcs8', pkcs8(scalar), { name: 'X25519' }, false, ['deriveBits']),
    subtle.importKey('raw', buf(point), { name: 'X25519' }, false, []),
  ]);
  return subtle.deriveBits({ name: 'X25519', public: pub }, priv, 256);
}

async function webHmac(key: Uint8Array, data: Uint8Array): Promise<ArrayBuffer> {
  const k = await subtle.importKey('raw', buf(key), { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
  return subtle.sign('HMAC', k, buf(data));
}

async function webAesCtr(key: Uint8Array, iv: Uint8Array, data: Uint8Array): Promise<ArrayBuffer> {
  const k = await subtle.importKey('raw', buf(key), { name: 'AES-CTR' }, false, ['encrypt']);
  return subtle.encrypt({ name: 'AES-CTR', counter: buf(iv), length: 128 }, k, buf(data));
}


async function primitives(params: NetworkParameters): Promise<PrimitiveFigures[]> {
  const g = geometryFromParameters(params);
  const scalar = rand(32);
  const point = portableBackend.x25519Base(rand(32));
  const key = rand(32);
  const iv = rand(16);
  const header = rand(g.headerLength);
  const payload = rand(g.payloadLength);
  const small = rand(32);
  // A check that the two agree before anything is timed.
  const a = portableBackend.x25519(scalar, point);
  const b = new Uint8Array(await webX25519(scalar, point));
  if (idKey(a) !== idKey(b)) throw new Error('WebCrypto X25519 and @noble disagree');
  const rows: Array<[string, number, () => void, () => Promise<unknown>]> = [
    ['x25519', 32, () => portableBackend.x25519(scalar, point), () => webX25519(scalar, point)],
    ['x25519_base', 32, () => portableBackend.x25519Base(scalar), () => webX25519(scalar, BASE_POINT)],
    ['hmac_sha256_header', g.headerLength, () => portableBackend.hmacSha256(key, header), () => webHmac(key, header)],
    ['aes256ctr_header', g.headerLength, () => portableBackend.aes256Ctr(key, iv, header), () => webAesCtr(key, iv, header)],
    ['aes256ctr_payload', g.payloadLength, () => portableBackend.aes256Ctr(key, iv, payload), () => webAesCtr(key, iv, payload)],
    ['sha256_32B', 32, () => sha256(small), () => subtle.digest('SHA-256', buf(small))],
    ['sha512_32B', 32, () => sha512(small), () => subtle.digest('SHA-512', buf(small))],
  ];
  const out: PrimitiveFigures[] = [];
  for (const [name, bytes, noble, web] of rows) {
    const [nobleUs, webUs, webBatchedUs] = await timeAlternating([noble, rounds(web, 1), rounds(web, BATCH)], [1, 1, BATCH]);
    out.push({ name, bytes, nobleUs: nobleUs!, webUs: webUs!, webBatchedUs: webBatchedUs! });
  }
  return out;
}

/** A gateway link that counts the packets put on it and never answers. */
class CountingLink implements GatewayLink {
  packets = 0;
  trySend(m: Uint8Array): boolean {
    if (m[1] === 2 /* send_packet */) this.packets++;
    return true;
  }
  send(m: Uint8Array): Promise<void> {
    this.trySend(m);
    return Promise.resolve();
  }
  recv(): Promise<Uint8Array | null> {
    return new Promise(() => undefined);
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
}

const silent: Logger = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined, child: () => silent };

/** A document of `layers` layers of 2 mixes and 2 gateways with fresh keys; the mix private keys by node id. */
function syntheticDocument(params: NetworkParameters, epoch: number): { doc: SignedDocument; privateKeys: Map<string, Uint8Array> } {
  const privateKeys = new Map<string, Uint8Array>();
  const node = (name: string, role: 'mix' | 'gateway', layer: number): DocumentNode => {
    const identityKey = rand(32);
    const priv = rand(32);
    privateKeys.set(idKey(identityKey), priv);
    const mixPublic = portableBackend.x25519Base(priv);
    return { name, identityKey, linkKey: portableBackend.x25519Base(rand(32)), role, layer, tcpAddress: '127.0.0.1:1', wsAddress: null, mixKeys: [epoch, epoch + 1].map((e) => ({ epoch: e, publicKey: mixPublic })) };
  };
  const nodes = [node('gw-1', 'gateway', 0), node('gw-2', 'gateway', 0)];
  for (let l = 1; l <= params.layers; l++) nodes.push(node(`mix-${l}-1`, 'mix', l), node(`mix-${l}-2`, 'mix', l));
  return { doc: { document: { epoch, params, nodes }, bytes: new Uint8Array(0), signatures: [] }, privateKeys };
}

/**
 * The portable backend, counting its calls by method and the time spent in them (performance.now
 * is coarse in a page, about 0.1 ms in Chromium, but with its jitter the sum over thousands of
 * calls of about a millisecond is close; the per-call figures from `primitives` check it).
 */
function counting(base: CryptoBackend, counts: Record<string, number>, times: Record<string, number>): CryptoBackend {
  const wrapped: Record<string, unknown> = { name: base.name };
  for (const k of Object.keys(base) as Array<keyof CryptoBackend>) {
    const v = base[k];
    if (typeof v !== 'function') continue;
    wrapped[k] = (...args: unknown[]) => {
      counts[k] = (counts[k] ?? 0) + 1;
      const t0 = performance.now();
      try {
        return (v as (...a: unknown[]) => unknown).apply(base, args);
      } finally {
        times[k] = (times[k] ?? 0) + performance.now() - t0;
      }
    };
  }
  return wrapped as unknown as CryptoBackend;
}


/** Packets each engine builds in turn when several are compared (see `engines`). */
const TURN_PACKETS = 10;

interface EngineRun {
  /** Builds `n` more packets, timing them. */
  build(n: number): Promise<void>;
  figures(): EngineFigures;
  stop(): Promise<void>;
}

/**
 * One engine building packets in virtual time: idle (cover only), or with real fragments waiting
 * at every send slot. With `pool`, header keys are made ahead with it (as the worker does with
 * WebCrypto), and the pool is refilled after every tick: the ticks and the refills are timed
 * apart, and the packet's time is their sum.
 */
async function engineRun(params: NetworkParameters, packets: number, real: boolean, pool: AsyncX25519 | null): Promise<EngineRun> {
  const clock = new VirtualClock(Date.now());
  const { doc } = syntheticDocument(params, epochAt(clock.now(), params.epochPeriodMs));
  const counts: Record<string, number> = {};
  const times: Record<string, number> = {};
  const crypto = counting(portableBackend, counts, times);
  const store = new RecordClientStore(RecordClientStore.journal());
  const link = new CountingLink();
  const gws = doc.document.nodes.filter((n) => n.role === 'gateway');
  const client = new Client(
    { linkPrivateKey: rand(32), gateway: gws[0]!.identityKey },
    { clock, crypto, aead: portableNoiseCrypto.aead('ChaChaPoly'), store, log: silent, connect: () => Promise.resolve(link), ...(pool === null ? {} : { headerKeys: { x25519: pool } }) },
  );
  client.setDocument(doc);
  client.start();
  await new Promise((r) => setTimeout(r, 0)); // the link connects
  let tickMs = 0;
  let refillMs = 0;
  const step = async (): Promise<boolean> => {
    const t0 = performance.now();
    const more = clock.step();
    const t1 = performance.now();
    tickMs += t1 - t0;
    if (pool !== null) {
      await client.headerKeysFilled();
      refillMs += performance.now() - t1;
    }
    return more;
  };
  if (real) {
    const peer = encodeAddress(portableBackend, { gateway: gws[1]!.identityKey, mailbox: portableBackend.x25519Base(rand(32)) });
    for (let i = 0; i < packets + 50; i++) client.send({ to: peer, body: rand(1000) });
  }
  // Warm up (the JIT, the on-curve cache), then count from zero.
  await client.headerKeysFilled();
  while (link.packets < 30 && (await step()));
  for (const k of Object.keys(counts)) delete counts[k];
  for (const k of Object.keys(times)) delete times[k];
  const p0 = link.packets;
  const h0 = client.headerKeyStatus();
  tickMs = refillMs = 0;
  return {
    async build(n) {
      const target = link.packets + n;
      while (link.packets < target && (await step()));
    },
    figures() {
      const n = link.packets - p0;
      const h1 = client.headerKeyStatus();
      const callsPerPacket: Record<string, number> = {};
      const usPerPacketIn: Record<string, number> = {};
      for (const [k, v] of Object.entries(counts)) {
        if (k === 'randomBytes') continue;
        callsPerPacket[k] = Math.round((v / n) * 100) / 100;
        usPerPacketIn[k] = ((times[k] ?? 0) * 1000) / n;
      }
      const pooled = h0 === null || h1 === null ? {} : { tickUsPerPacket: (tickMs * 1000) / n, refillUsPerPacket: (refillMs * 1000) / n, pooled: h1.pooled - h0.pooled, synchronous: h1.synchronous - h0.synchronous };
      return { usPerPacket: ((tickMs + refillMs) * 1000) / n, packets: n, callsPerPacket, usPerPacketIn, ...pooled };
    },
    async stop() {
      await client.stop();
      store.close();
    },
  };
}

/**
 * Engines (one per entry of `pools`: null for @noble at the tick, else a pool over that
 * AsyncX25519) building `packets` packets each, in turns of TURN_PACKETS: load on a shared
 * machine that comes and goes falls on all of them alike.
 */
async function engines(params: NetworkParameters, packets: number, real: boolean, pools: ReadonlyArray<AsyncX25519 | null>): Promise<EngineFigures[]> {
  const runs: EngineRun[] = [];
  try {
    for (const pool of pools) runs.push(await engineRun(params, packets, real, pool));
    for (let done = 0; done < packets; done += TURN_PACKETS) for (const r of runs) await r.build(Math.min(TURN_PACKETS, packets - done));
    return runs.map((r) => r.figures());
  } finally {
    for (const r of runs) await r.stop();
  }
}

/** What a fetch brings back, per entry: inputs made by the real path, then the engine's own functions timed. */
function fetchSide(params: NetworkParameters): FetchFigures {
  const g = geometryFromParameters(params);
  const sphinx = new Sphinx(g, portableBackend);
  const epoch = epochAt(Date.now(), params.epochPeriodMs);
  const { doc, privateKeys } = syntheticDocument(params, epoch);
  const nodes = doc.document.nodes;
  const gw = nodes[0]!;
  const mixes = (): DocumentNode[] => Array.from({ length: params.layers }, (_, l) => nodes.find((n) => n.layer === l + 1)!);
  const aead = portableNoiseCrypto.aead('ChaChaPoly');
  const mailboxPrivate = rand(32);
  const mailbox = portableBackend.x25519Base(mailboxPrivate);
  // A sealed loop frame, as it sits in our mailbox.
  const sealed = seal(portableBackend, aead, mailbox, loopFrame(g));
  if (open(portableBackend, aead, mailboxPrivate, mailbox, sealed) === null) throw new Error('the sealed frame does not open');
  // An acknowledgement: a SURB through the mixes to our gateway, used, and unwrapped hop by hop.
  const surbId = rand(16);
  const route = [...mixes(), gw];
  const s = sphinx.createSurb(pathHops(route, epoch, route.slice(1).map(() => 0), { recipient: mailbox, surbId }));
  let packet = sphinx.createPacketFromSurb(s.surb, new Uint8Array(g.forwardPayloadLength)).packet;
  let payload: Uint8Array | null = null;
  for (const hop of route) {
    const r = sphinx.unwrap(privateKeys.get(idKey(hop.identityKey))!, packet);
    if (r.kind === 'final') {
      payload = r.payload;
      break;
    }
    packet = r.packet;
  }
  if (payload === null) throw new Error('the reply did not reach its last hop');
  const reply = payload;
  sphinx.decryptSurbPayload(reply, s.surbKeys);
  return {
    openUs: timeSync(() => open(portableBackend, aead, mailboxPrivate, mailbox, sealed)),
    surbReplyUs: timeSync(() => sphinx.decryptSurbPayload(reply, s.surbKeys)),
  };
}


/**
 * The design's precompute, measured (docs/browser.md, "WebCrypto against @noble"): a header's hop
 * keys (header-keys.ts's hopKeys: alpha_i = X25519(k_i, 9) and s_i = X25519(k_i, y_i), the k_i
 * from the blinding chain) with every X25519 on WebCrypto, the two of a hop in parallel and the
 * hops in sequence (each k_i needs the previous hop's keys). Checked to give hopKeys's bytes.
 */
async function hopKeysWeb(x: Uint8Array, publicKeys: readonly Uint8Array[]): Promise<HopKeys> {
  const alphas: Uint8Array[] = [];
  const keys: PacketKeys[] = [];
  const blinds: Uint8Array[] = [];
  let c = clampedScalarModL(x);
  for (let i = 0; i < publicKeys.length; i++) {
    let k = x;
    if (i > 0) {
      c = mulModL(c, clampedScalarModL(blinds[i - 1]!));
      const r = clampedRepresentative(c);
      if (r === null) throw new Error('no clamped representative (about 2^-126): the synchronous chain would be used');
      k = r;
    }
    const [alpha, s] = await Promise.all([webX25519(k, BASE_POINT), webX25519(k, publicKeys[i]!)]);
    if (i > 0) k.fill(0);
    alphas.push(new Uint8Array(alpha));
    const secret = new Uint8Array(s);
    keys.push(deriveKeys(portableBackend, secret));
    secret.fill(0);
    if (i < publicKeys.length - 1) blinds.push(blindingFactor(portableBackend, keys[i]!));
  }
  for (const b of blinds) b.fill(0);
  return { alphas, keys };
}

async function headers(params: NetworkParameters): Promise<HeaderFigures> {
  const hops = params.hops;
  const pks = Array.from({ length: hops }, () => portableBackend.x25519Base(rand(32)));
  const x = rand(32);
  const sync = hopKeys(portableBackend, x, pks, () => true);
  const web = await hopKeysWeb(x, pks);
  for (let i = 0; i < hops; i++) {
    if (idKey(sync.alphas[i]!) !== idKey(web.alphas[i]!) || idKey(sync.keys[i]!.headerMac) !== idKey(web.keys[i]!.headerMac)) throw new Error('the WebCrypto hop keys differ from hopKeys');
  }
  const wipeAll = (h: HopKeys): void => h.keys.forEach((k) => k.wipe());
  wipeAll(sync);
  wipeAll(web);
  const one = async (): Promise<void> => wipeAll(await hopKeysWeb(rand(32), pks));
  const [nobleUs, webUs, webParallelUs] = await timeAlternating([() => wipeAll(hopKeys(portableBackend, rand(32), pks, () => true)), rounds(one, 1), rounds(one, 8)], [1, 1, 8]);
  return { hops, nobleUs: nobleUs!, webUs: webUs!, webParallelUs: webParallelUs! };
}

async function runWebBench(opts: { packets: number }): Promise<WebBenchFigures> {
  const params: NetworkParameters = { ...DEFAULT_PARAMS };
  const prims = await primitives(params);
  const web = await webCryptoX25519();
  // @noble and the pool in turns, so that a shared machine's load falls on both alike.
  const [cover, coverPool] = await engines(params, opts.packets, false, web === null ? [null] : [null, web]);
  const [real, realPool] = await engines(params, opts.packets, true, web === null ? [null] : [null, web]);
  const fetch = fetchSide(params);
  const header = await headers(params);
  return { userAgent: navigator.userAgent, primitives: prims, cover: cover!, real: real!, coverPool: coverPool ?? null, realPool: realPool ?? null, fetch, header, params: { hops: params.hops, userPayloadLength: params.userPayloadLength, layers: params.layers } };
}

Object.assign(globalThis, { runWebBench });
document.title = 'ready';

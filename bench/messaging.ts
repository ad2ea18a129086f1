/**
 * `npm run bench -- messaging`: the cost of the messaging layer's sessions with each crypto
 * backend, each figure beside one X25519 measured in alternating batches in the same run:
 * session set-up per side (the initiator: X3DH's four DHs, an ML-KEM-768 encapsulation, the first
 * ratchet key and its first message; the responder: the same DHs, a decapsulation, its first DH
 * ratchet step and reading that message), one message encrypted and decrypted within a chain and
 * with a DH ratchet step, and the extra CPU of one post-quantum step (ML-KEM-768 key generation,
 * encapsulation and decapsulation, over both sides). Goals (issue 18): set-up <= 2 ms per side,
 * a message without a DH step <= 1 X25519. Then the end-to-end latency between two named
 * contacts on a local network, p50 and p99 (BENCH_MESSAGING_MESSAGES=0 skips it).
 */
import { nodeBackend } from '../src/crypto/node.js';
import { portableBackend } from '../src/crypto/portable.js';
import type { CryptoBackend } from '../src/crypto/types.js';
import {
  type MessagingComponents,
  acceptSession,
  createBundle,
  createPrekeyStore,
  generateIdentity,
  initiateSession,
  kemDecapsulate,
  kemEncapsulate,
  kemGenerate,
} from '../src/messaging/index.js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initClient, runClient } from '../src/client/node-client.js';
import { networkPortCount } from '../src/config/genconfig.js';
import { LOCAL_NETWORK_EPOCH_MS } from '../src/config/params.js';
import { findFreePortRange } from '../src/local/network.js';
import { ensureLocalNetwork, startLocalNetwork } from '../src/local/up.js';
import { silentLogger } from '../src/ops/log.js';
import { measurePair, percentile, round } from './_timing.js';

/** Messages timed between two named contacts on a local network (0 skips that part). */
/** Where the local network's ports are looked for: below Linux's ephemeral range (32768 up), away from the tests' bases. */
const BASE_PORT = 21_000;
const E2E_MESSAGES = Number(process.env['BENCH_MESSAGING_MESSAGES'] ?? 50);

type Figures = Record<string, number>;

function benchBackend(c: CryptoBackend, prefix: string): Figures {
  const comp: MessagingComponents = { crypto: c, now: () => 0 };
  const scalar = c.randomBytes(32);
  const point = c.x25519Base(c.randomBytes(32));
  const x25519 = (): void => void c.x25519(scalar, point);
  const alice = generateIdentity(c);
  const bob = generateIdentity(c);
  const store = createPrekeyStore();
  const bundle = createBundle(c, bob, store);
  const [prekeyId, prekeySecret] = [...store.keys][0]!;
  const text = new Uint8Array(100);

  const [x1, initiator] = measurePair(x25519, () => void initiateSession(alice, bundle, comp).encrypt(text));
  const first = initiateSession(alice, bundle, comp).encrypt(text);
  // A fresh store each time, since accepting consumes the prekey.
  const [x2, responder] = measurePair(x25519, () => void acceptSession(bob, { nextId: prekeyId + 1, keys: new Map([[prekeyId, prekeySecret.slice()]]) }, first, comp));

  // Within a chain: Alice sends, Bob reads.
  const a = initiateSession(alice, bundle, comp);
  const b = acceptSession(bob, { nextId: prekeyId + 1, keys: new Map([[prekeyId, prekeySecret.slice()]]) }, a.encrypt(text), comp).session;
  a.decrypt(b.encrypt(text));
  const [x3, inChain] = measurePair(x25519, () => void b.decrypt(a.encrypt(text)));
  // Ping-pong: every message starts a chain, so every decryption is a DH ratchet step; two messages per call.
  const [x4, pingPong] = measurePair(x25519, () => {
    b.decrypt(a.encrypt(text));
    a.decrypt(b.encrypt(text));
  });
  const [x5, pq] = measurePair(x25519, () => {
    const k = kemGenerate(c);
    const { ciphertext } = kemEncapsulate(c, k.publicKey);
    kemDecapsulate(k.secretKey, ciphertext);
  });
  const f: Figures = {
    [`${prefix}x25519_us`]: round(x1.us),
    [`${prefix}setup_initiator_us`]: round(initiator.us),
    [`${prefix}setup_initiator_cpu_us`]: round(initiator.cpuUs),
    [`${prefix}setup_responder_us`]: round(responder.us),
    [`${prefix}setup_responder_cpu_us`]: round(responder.cpuUs),
    [`${prefix}message_no_dh_us`]: round(inChain.us),
    [`${prefix}message_dh_step_us`]: round(pingPong.us / 2),
    [`${prefix}pq_step_us`]: round(pq.us),
    [`${prefix}setup_initiator_over_x25519`]: round(initiator.us / x1.us),
    [`${prefix}setup_responder_over_x25519`]: round(responder.us / x2.us),
    [`${prefix}message_no_dh_over_x25519`]: round(inChain.us / x3.us),
    [`${prefix}message_dh_step_over_x25519`]: round(pingPong.us / 2 / x4.us),
    [`${prefix}pq_step_over_x25519`]: round(pq.us / x5.us),
  };
  return f;
}

/**
 * End-to-end latency between two named contacts on a local network (the defaults of `backchannel
 * up`): from `sendText` on Alice's messenger to the message in Bob's history, one text every
 * 250 ms once the session is up both ways. Both clients run in this process, as their daemons do.
 */
async function contactsEndToEnd(): Promise<Figures> {
  const dir = mkdtempSync(join(tmpdir(), 'bc-bench-msg-'));
  const data = join(dir, 'network');
  process.stderr.write('messaging bench: starting a local network...\n');
  await ensureLocalNetwork({ dir: data, basePort: await findFreePortRange(networkPortCount(), BASE_PORT), params: { epochPeriodMs: LOCAL_NETWORK_EPOCH_MS } });
  const net = await startLocalNetwork({ dir: data });
  const wait = async (ok: () => boolean, timeoutMs: number, what: string): Promise<void> => {
    const deadline = Date.now() + timeoutMs;
    while (!ok()) {
      if (Date.now() > deadline) throw new Error(`messaging bench: timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  };
  try {
    await initClient({ dir: join(dir, 'alice'), network: data, gatewayName: 'gateway-1' });
    await initClient({ dir: join(dir, 'bob'), network: data, gatewayName: 'gateway-2' });
    const alice = await runClient({ dir: join(dir, 'alice'), log: silentLogger });
    const bob = await runClient({ dir: join(dir, 'bob'), log: silentLogger });
    try {
      await wait(() => alice.client.status().document !== 'none' && bob.client.status().document !== 'none', 60_000, 'network documents');
      alice.messenger.importContact('bob', bob.messenger.exportCard());
      bob.messenger.importContact('alice', alice.messenger.exportCard());
      await wait(() => alice.messenger.contact('bob').session === 'up' && bob.messenger.contact('alice').session === 'up', 120_000, 'the session');
      const sentAt = new Map<string, number>();
      const latencies: number[] = [];
      const unsubscribe = bob.messenger.subscribe((e) => {
        const t = e.type === 'message' && e.entry.text !== null ? sentAt.get(e.entry.text) : undefined;
        if (t !== undefined) latencies.push(performance.now() - t);
      });
      for (let i = 0; i < E2E_MESSAGES; i++) {
        const text = `message ${i}`;
        sentAt.set(text, performance.now());
        alice.messenger.sendText('bob', text);
        await new Promise((r) => setTimeout(r, 250));
      }
      await wait(() => latencies.length >= E2E_MESSAGES, 120_000, 'the messages').catch(() => undefined);
      unsubscribe();
      const sorted = latencies.sort((a, b) => a - b);
      const p = net.document.document.params;
      return {
        contacts_e2e_p50_ms: round(percentile(sorted, 50)),
        contacts_e2e_p99_ms: round(percentile(sorted, 99)),
        contacts_e2e_messages: sorted.length,
        contacts_e2e_sum_mix_delays_ms: p.layers * p.mixMeanDelayMs,
      };
    } finally {
      await alice.stop();
      await bob.stop();
    }
  } finally {
    await net.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function benchMessaging(): Promise<Figures> {
  const cpu = { ...benchBackend(nodeBackend, ''), ...benchBackend(portableBackend, 'portable_') };
  if (E2E_MESSAGES === 0) return cpu;
  return { ...cpu, ...(await contactsEndToEnd()) };
}

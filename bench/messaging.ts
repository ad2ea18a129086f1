/**
 * `npm run bench -- messaging`: the cost of the messaging layer's sessions with each crypto
 * backend, each figure beside one X25519 measured in alternating batches in the same run:
 * session set-up per side (the initiator: X3DH's four DHs, an ML-KEM-768 encapsulation, the first
 * ratchet key and its first message; the responder: the same DHs, a decapsulation, its first DH
 * ratchet step and reading that message), one message encrypted and decrypted within a chain and
 * with a DH ratchet step, and the extra CPU of one post-quantum step (ML-KEM-768 key generation,
 * encapsulation and decapsulation, over both sides). Goals (issue 18): set-up <= 2 ms per side,
 * a message without a DH step <= 1 X25519.
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
import { measurePair, round } from './_timing.js';

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

export function benchMessaging(): Figures {
  return { ...benchBackend(nodeBackend, ''), ...benchBackend(portableBackend, 'portable_') };
}

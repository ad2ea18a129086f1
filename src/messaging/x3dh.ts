/**
 * Session set-up: X3DH without signatures (four DHs) with an ML-KEM-768 encapsulation to the
 * responder's identity KEM key mixed into the KDF, then the Double Ratchet initialised as the
 * spec's section 4.3 does (RatchetInitAliceHE / RatchetInitBobHE).
 *
 *   DH1 = DH(IK_A, OPK_B)   authenticates A to B (implicitly: only A and B can compute it)
 *   DH2 = DH(EK_A, IK_B)    authenticates B to A
 *   DH3 = DH(EK_A, OPK_B)   forward secrecy: both halves are wiped after the set-up
 *   DH4 = DH(IK_A, IK_B)    binds the two identities whatever the prekey: a leaked prekey secret
 *                            alone does not let anyone pose as A to B
 *   SS  = ML-KEM-768.Encaps(KEM_B)   keeps the key safe from a quantum computer that breaks X25519
 *
 * SK ‖ HKa ‖ NHKb = HKDF(0^32, 0xFF^32 ‖ DH1 ‖ DH2 ‖ DH3 ‖ DH4 ‖ SS, INFO_X3DH). B's ratchet key is
 * OPK_B itself, so that its secret leaves B's memory at B's first ratchet step.
 */
import { BackchannelError, isBackchannelError } from '../errors.js';
import { abytes, concatBytes, wipe } from '../util/bytes.js';
import { Reader } from './_codec.js';
import { DH_LENGTH, KEM_CIPHERTEXT_LENGTH, KEM_PUBLIC_LENGTH, MESSAGE_TYPE_PREKEY } from './constants.js';
import type { Bundle, Identity, PrekeyStore } from './identity.js';
import { takePrekey } from './identity.js';
import { kdfRoot, kdfX3dh } from './kdf.js';
import { kemDecapsulate, kemEncapsulate } from './kem.js';
import { type MessagingComponents, Session, type SessionCore, dh, parseFrame } from './ratchet.js';

function core(fields: Omit<SessionCore, 'cks' | 'ckr' | 'ns' | 'nr' | 'pn' | 'hks' | 'hkr' | 'dhr' | 'pqOwn' | 'pqNextId' | 'pqSentSince' | 'pqPending' | 'pqChain' | 'pqAnswered'> & Partial<SessionCore>): SessionCore {
  return {
    cks: null, ckr: null, ns: 0, nr: 0, pn: 0, hks: null, hkr: null, dhr: null,
    pqOwn: null, pqNextId: 1, pqSentSince: 0, pqPending: null, pqChain: null, pqAnswered: 0,
    ...fields,
  };
}

/**
 * Opens a session to the holder of `bundle`. The messages this session encrypts carry the
 * set-up (our identity key, an ephemeral key, the prekey id, the KEM ciphertext) until a reply
 * has been read.
 * @throws {BackchannelError} ERR_MSG_KEY when a key in the bundle is invalid (a small-order
 *   X25519 key, an ML-KEM key that fails FIPS 203's check).
 */
export function initiateSession(identity: Identity, bundle: Bundle, components: MessagingComponents): Session {
  const c = components.crypto;
  abytes('bundle.identityKey', bundle.identityKey, DH_LENGTH);
  abytes('bundle.prekey', bundle.prekey, DH_LENGTH);
  abytes('bundle.kemPublicKey', bundle.kemPublicKey, KEM_PUBLIC_LENGTH);
  const ek = c.randomBytes(DH_LENGTH);
  const secrets: Uint8Array[] = [ek];
  try {
    const ekPublic = c.x25519Base(ek);
    const dhs = [dh(c, identity.dhSecret, bundle.prekey), dh(c, ek, bundle.identityKey), dh(c, ek, bundle.prekey), dh(c, identity.dhSecret, bundle.identityKey)];
    secrets.push(...dhs);
    const { ciphertext, sharedSecret } = kemEncapsulate(c, bundle.kemPublicKey);
    secrets.push(sharedSecret);
    const { sk, hka, nhkb } = kdfX3dh(c, dhs, sharedSecret);
    secrets.push(sk);
    const prekeyId = new Uint8Array(4);
    new DataView(prekeyId.buffer).setUint32(0, bundle.prekeyId);
    // RatchetInitAliceHE: a fresh ratchet key, B's prekey as B's first ratchet key.
    const dhsSecret = c.randomBytes(DH_LENGTH);
    const out = dh(c, dhsSecret, bundle.prekey);
    secrets.push(out);
    const step = kdfRoot(c, sk, out);
    return Session.fromCore(
      core({
        initiator: true,
        ad: concatBytes(identity.dhPublic, bundle.identityKey),
        dhsSecret,
        dhsPublic: c.x25519Base(dhsSecret),
        dhr: bundle.prekey.slice(),
        rk: step.rk,
        cks: step.ck,
        nhks: step.nhk,
        hks: hka,
        nhkr: nhkb,
        prekeyFields: concatBytes(identity.dhPublic, ekPublic, prekeyId, ciphertext),
        setupId: null,
        pqLastMs: components.now(),
      }),
      components,
    );
  } finally {
    wipe(...secrets);
  }
}

/** What `acceptSession` returns: the new session, the first message's plaintext, and who sent it. */
export interface Accepted {
  session: Session;
  plaintext: Uint8Array;
  /** The initiator's X25519 identity key, for the caller to match against its contacts. */
  remoteIdentityKey: Uint8Array;
}

/**
 * Opens the responder's side of a session from the initiator's first message, and reads it.
 * The one-time prekey it names is consumed (removed from `prekeys` and wiped) only when the
 * message authenticates, so that garbage cannot burn prekeys. A later message of the same set-up
 * (the initiator repeats it until it reads a reply) goes to `session.decrypt`.
 * @throws {BackchannelError} ERR_MSG_ENCODING for a malformed message or one that is not a set-up;
 *   ERR_MSG_PREKEY when the prekey is unknown or was consumed already; ERR_MSG_DECRYPT when the
 *   message does not authenticate; ERR_MSG_KEY for a small-order key.
 */
export function acceptSession(identity: Identity, prekeys: PrekeyStore, message: Uint8Array, components: MessagingComponents): Accepted {
  const c = components.crypto;
  const f = parseFrame(message);
  if (f.type !== MESSAGE_TYPE_PREKEY) throw new BackchannelError('ERR_MSG_ENCODING', 'messaging: invalid message: not a session set-up');
  const r = new Reader(f.prekeyFields!, 'set-up');
  const ika = r.bytes(DH_LENGTH);
  const eka = r.bytes(DH_LENGTH);
  const prekeyId = r.u32();
  const ciphertext = r.view(KEM_CIPHERTEXT_LENGTH);
  const opk = prekeys.keys.get(prekeyId);
  if (opk === undefined) throw new BackchannelError('ERR_MSG_PREKEY', 'messaging: unknown or already used one-time prekey');
  const secrets: Uint8Array[] = [];
  let session: Session | undefined;
  try {
    const dhs = [dh(c, opk, ika), dh(c, identity.dhSecret, eka), dh(c, opk, eka), dh(c, identity.dhSecret, ika)];
    secrets.push(...dhs);
    const ss = kemDecapsulate(identity.kem.secretKey, ciphertext);
    secrets.push(ss);
    const { sk, hka, nhkb } = kdfX3dh(c, dhs, ss);
    // RatchetInitBobHE: the prekey is B's first ratchet key pair.
    session = Session.fromCore(
      core({
        initiator: false,
        ad: concatBytes(ika, identity.dhPublic),
        dhsSecret: opk.slice(),
        dhsPublic: c.x25519Base(opk),
        rk: sk,
        nhks: nhkb,
        nhkr: hka,
        prekeyFields: null,
        setupId: f.prekeyFields!.slice(0, 2 * DH_LENGTH + 4),
        pqLastMs: components.now(),
      }),
      components,
    );
    const plaintext = session.decrypt(message);
    wipe(takePrekey(prekeys, prekeyId));
    return { session, plaintext, remoteIdentityKey: ika };
  } catch (err) {
    session?.destroy();
    if (isBackchannelError(err, 'ERR_MSG_REPLAY')) throw new BackchannelError('ERR_MSG_DECRYPT', 'messaging: message does not authenticate in this session');
    throw err;
  } finally {
    wipe(...secrets, eka);
  }
}

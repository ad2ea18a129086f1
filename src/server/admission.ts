/**
 * A gateway's admission of new clients, decided in its link's accept policy from the payload of
 * the client's third handshake message (src/wire/admission.ts), so that no frame is added to the
 * link: a refusal is the close frame the link sends anyway, with a reason the client can explain.
 *
 * The operator chooses the mode in the gateway config:
 * - `proof-of-work` (the default): a new key must show `workBits` of work bound to itself and to
 *   this gateway's identity key. What that costs whom: docs/network.md, "Admission".
 * - `token`: a new key must show an invitation token minted with the operator's key
 *   (`backchannel gateway token`); a token admits the first key that shows it, and only that key.
 * - `open`: anyone (tests, local networks).
 * In every mode a key the gateway already holds a record for (a client seen within the retention
 * period) is admitted as it is, and a new key is refused while the gateway holds `maxClients`.
 * Nothing identifies anyone: the gateway learns a key and a proof that work was done for it.
 */
import { CloseReason, WORK_REQUIRED_BASE } from '../link/link.js';
import type { AcceptVerdict } from '../link/link.js';
import { ADMISSION_WORK_BITS, decodeAdmission, MAX_ADMISSION_WORK_BITS, TOKEN_ID_LENGTH, tokenValid, workBits } from '../wire/admission.js';
import type { AdmissionCrypto } from '../wire/admission.js';
import { aint, toHex } from '../util/bytes.js';

export type AdmissionMode = 'open' | 'proof-of-work' | 'token';
export const ADMISSION_MODES: readonly AdmissionMode[] = ['proof-of-work', 'token', 'open'];

/** Why a new client was refused (the metric's label). */
export type AdmissionRefusal = 'work' | 'token_required' | 'token_invalid' | 'full';
export const ADMISSION_REFUSALS: readonly AdmissionRefusal[] = ['work', 'token_required', 'token_invalid', 'full'];

/**
 * Clients a gateway holds records for at most, by default: 100,000 (the rate limiter's bound on
 * buckets, rate-limit.ts); a new client past it is refused (`full`) and health says "degraded".
 */
export const DEFAULT_MAX_CLIENTS = 100_000;

/** Which token ids are taken, and by which key: durable, so that a restart does not free a used token. */
export interface TokenLedger {
  /** Binds `id` to `client` unless another key holds it; true when `client` holds it now. */
  bind(id: Uint8Array, client: Uint8Array): boolean;
}

/** A ledger in memory (tests, the simulator). */
export function memoryTokenLedger(): TokenLedger {
  const held = new Map<string, string>();
  return {
    bind(id, client) {
      const k = toHex(id);
      const c = toHex(client);
      const holder = held.get(k);
      if (holder === undefined) held.set(k, c);
      return (holder ?? c) === c;
    },
  };
}

export interface AdmissionInit {
  readonly mode: AdmissionMode;
  /** Work a new key must show (proof-of-work). Default ADMISSION_WORK_BITS. */
  readonly workBits?: number;
  /** Clients held at most. Default DEFAULT_MAX_CLIENTS. */
  readonly maxClients?: number;
}

export interface AdmissionComponents {
  /** This gateway's Ed25519 identity public key (what a proof of work is bound to). */
  readonly identityKey: Uint8Array;
  /** Whether a record for this key is held (a client seen within the retention period). */
  known(client: Uint8Array): boolean;
  /** Client records held now. */
  clients(): number;
  /** Token mode: the operator's key that mints tokens, and the ledger of used ones. */
  readonly token?: { readonly key: Uint8Array; readonly ledger: TokenLedger; readonly crypto: AdmissionCrypto };
  /** Told of each admission of a new key and each refusal. */
  readonly counted?: (outcome: 'admitted' | 'known' | AdmissionRefusal) => void;
}

export interface Admission {
  readonly mode: AdmissionMode;
  readonly workBits: number;
  readonly maxClients: number;
  /** The verdict on a client key and its handshake payload. */
  check(client: Uint8Array, payload: Uint8Array): AcceptVerdict;
  /** Whether the last new key was refused because the gateway is full, and is still (for health). */
  full(): boolean;
}

/**
 * Builds a gateway's admission.
 * @throws {RangeError} for an unknown mode, work bits or a cap out of range, or token mode without a key.
 */
export function createAdmission(init: AdmissionInit, c: AdmissionComponents): Admission {
  if (!ADMISSION_MODES.includes(init.mode)) throw new RangeError(`admission: "mode" expected one of ${ADMISSION_MODES.join(', ')}`);
  const bits = init.workBits ?? ADMISSION_WORK_BITS;
  aint('workBits', bits, 0, MAX_ADMISSION_WORK_BITS);
  const maxClients = init.maxClients ?? DEFAULT_MAX_CLIENTS;
  aint('maxClients', maxClients, 1, Number.MAX_SAFE_INTEGER);
  if (init.mode === 'token' && c.token === undefined) throw new RangeError('admission: token mode needs the operator key');
  let fullSeen = false;

  function refuse(reason: AdmissionRefusal): AcceptVerdict {
    c.counted?.(reason);
    switch (reason) {
      case 'work':
        return { refuse: WORK_REQUIRED_BASE + bits };
      case 'token_required':
        return { refuse: CloseReason.tokenRequired };
      case 'token_invalid':
        return { refuse: CloseReason.tokenInvalid };
      case 'full':
        return { refuse: CloseReason.full };
    }
  }

  return {
    mode: init.mode,
    workBits: bits,
    maxClients,
    check(client, payload) {
      if (c.known(client)) {
        c.counted?.('known');
        return true;
      }
      // The cap first: a client is told "full" before it spends work in vain.
      if (c.clients() >= maxClients) {
        fullSeen = true;
        return refuse('full');
      }
      fullSeen = false;
      const a = decodeAdmission(payload);
      if (init.mode === 'proof-of-work') {
        if (a.kind !== 'work' || workBits(c.identityKey, client, a.nonce) < bits) return refuse('work');
      } else if (init.mode === 'token') {
        if (a.kind !== 'token') return refuse('token_required');
        const t = c.token!;
        if (!tokenValid(t.crypto, t.key, a.token) || !t.ledger.bind(a.token.subarray(0, TOKEN_ID_LENGTH), client)) return refuse('token_invalid');
      }
      c.counted?.('admitted');
      return true;
    },
    full() {
      if (fullSeen && c.clients() < maxClients) fullSeen = false;
      return fullSeen;
    },
  };
}

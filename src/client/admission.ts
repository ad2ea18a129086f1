/**
 * A client's admission at its gateway (src/wire/admission.ts, src/server/admission.ts): what it
 * carries in its handshake, and what it does when the gateway refuses it.
 *
 * A client first links with nothing. A gateway that wants work refuses a key it does not know with
 * the bits it asks for; the client then computes the proof once (in chunks, giving its event loop
 * turns, with progress in its log and status), keeps it in its store under the gateway's identity
 * key, and carries it in every handshake with that gateway from then on. A gateway that wants a
 * token refuses without one; the user gets a token from the operator (`backchannel client token`),
 * which the client keeps and carries likewise. Portable: no `node:` imports.
 */
import type { ClientStore } from './store.js';
import type { Logger } from '../ops/logger.js';
import { encodeAdmission, solveWork, TOKEN_LENGTH, workBits } from '../wire/admission.js';
import { toHex } from '../util/bytes.js';

/** Store setting of the proof kept for one gateway: `admission:<identity hex>`, the handshake payload. */
export const ADMISSION_SETTING_PREFIX = 'admission:';
/** Store setting of the invitation token the user gave (`backchannel client token`). */
export const ADMISSION_TOKEN_SETTING = 'admission-token';

/** What the client's admission is doing, for its status. */
export type AdmissionState =
  | { readonly state: 'none' }
  | { readonly state: 'working'; readonly bits: number; readonly percent: number }
  | { readonly state: 'ready' }
  | { readonly state: 'refused'; readonly code: string; readonly message: string };

export interface AdmissionComponents {
  readonly store: Pick<ClientStore, 'getSetting' | 'setSetting'>;
  /** Our link public key (what a proof is bound to). */
  readonly linkPublicKey: Uint8Array;
  readonly log: Logger;
  /** Gives the event loop a turn between chunks of work (a zero timer). */
  readonly yieldNow: () => Promise<void>;
  /** Stops a computation (the client stops). */
  readonly cancelled: () => boolean;
}

/** The refusal a gateway sent (LinkRefusedError's fields). */
export interface Refusal {
  readonly code: string;
  readonly message: string;
  readonly workBits: number | null;
}

export class ClientAdmission {
  readonly #c: AdmissionComponents;
  #state: AdmissionState = { state: 'none' };
  #working: Promise<void> | null = null;

  constructor(components: AdmissionComponents) {
    this.#c = components;
  }

  get state(): AdmissionState {
    return this.#state;
  }

  /**
   * What to carry in the handshake with this gateway: a kept proof, else the user's token, else
   * nothing; the token first when the gateway last asked for one (it changed to token admission).
   */
  payload(gatewayIdentity: Uint8Array): Uint8Array | undefined {
    const kept = this.#c.store.getSetting(ADMISSION_SETTING_PREFIX + toHex(gatewayIdentity));
    const token = this.#c.store.getSetting(ADMISSION_TOKEN_SETTING);
    const tokenPayload = token !== null && token.length === TOKEN_LENGTH ? encodeAdmission({ kind: 'token', token }) : undefined;
    const wantsToken = this.#state.state === 'refused' && this.#state.code === 'ERR_ADMISSION_TOKEN_REQUIRED';
    if (wantsToken && tokenPayload !== undefined) return tokenPayload;
    return kept ?? tokenPayload;
  }

  /** Linked: whatever was carried worked. */
  admitted(): void {
    if (this.#state.state !== 'none') this.#state = { state: 'ready' };
  }

  /**
   * The gateway refused us. For work, computes and keeps the proof (resolves once it is kept: link
   * again at once); otherwise records why (the status says it) and resolves at once.
   */
  refused(gatewayIdentity: Uint8Array, r: Refusal): Promise<void> {
    if (r.workBits === null) {
      if (this.#state.state !== 'refused' || this.#state.code !== r.code) this.#c.log.warn('the gateway refused us', { code: r.code });
      this.#state = { state: 'refused', code: r.code, message: r.message.replace(/^link: /, '') };
      return Promise.resolve();
    }
    this.#working ??= this.#work(gatewayIdentity, r.workBits).finally(() => {
      this.#working = null;
    });
    return this.#working;
  }

  async #work(gatewayIdentity: Uint8Array, bits: number): Promise<void> {
    const setting = ADMISSION_SETTING_PREFIX + toHex(gatewayIdentity);
    this.#state = { state: 'working', bits, percent: 0 };
    this.#c.log.info('computing the proof of work this gateway asks of new clients (once per gateway)', { bits });
    let reported = 0;
    const nonce = await solveWork(gatewayIdentity, this.#c.linkPublicKey, bits, {
      yieldNow: this.#c.yieldNow,
      cancelled: this.#c.cancelled,
      onProgress: (tried, expected) => {
        // The expected count, not a bound: past it the work goes on, shown as 99 %.
        const percent = Math.min(99, Math.floor((100 * tried) / expected));
        this.#state = { state: 'working', bits, percent };
        if (percent >= reported + 10) {
          reported = percent - (percent % 10);
          this.#c.log.info('proof of work', { percent });
        }
      },
    });
    if (nonce === null) {
      this.#state = { state: 'none' };
      return;
    }
    if (workBits(gatewayIdentity, this.#c.linkPublicKey, nonce) < bits) throw new RangeError('admission: the proof found does not hold');
    this.#c.store.setSetting(setting, encodeAdmission({ kind: 'work', nonce }));
    this.#state = { state: 'ready' };
    this.#c.log.info('proof of work done; kept for this gateway');
  }
}

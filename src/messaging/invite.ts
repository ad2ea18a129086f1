/**
 * Contacts by code: the exchange itself, as pure steps (docs/messaging.md, "Contacts by code").
 * The client's invite manager (src/client/invites.ts) drives it: it asks `request()` what to send
 * to the rendezvous, sends it in a send slot, and feeds the answer to `onAnswer()`.
 *
 *   inviter A                         rendezvous (channel n)                    acceptor B
 *   post side 0: P1 = sid, MSGa  ───▶ [A: P1]
 *   (taken: another channel; empty: show the code)
 *                                     [A: P1]                   ◀─── read side 0
 *                                     [A: P1][B: P2]            ◀─── post side 1: P2 = MSGb, Tb, seal_B(card B)
 *   read side 1                  ───▶ answer P2: check Tb, open card B
 *   post side 0: P3 = sid, MSGa, Ta, seal_A(card A)  (or, for a wrong code, ABORT)
 *                                     [A: P3][B: P2]            ◀─── read side 0: check Ta, open card A
 *
 * CPace (cpace.ts) runs with PRS = the code's words, CI = "backchannel invite v1" ‖ channel, and
 * a sid the inviter draws. Tb and Ta are the draft's key confirmation; the cards are sealed with
 * ChaCha20-Poly1305 under keys derived from ISK. A wrong code shows at A when Tb fails; A then
 * posts ABORT in its side's place (the code is burned: whoever reads it next learns the invite
 * failed) and B, reading ABORT, fails too. An attacker who guesses gets one try per code.
 *
 * State is a plain object, serialised with encodeInviteState for the store. Portable: no
 * `node:` imports; crypto and randomness come from the backend.
 */
import type { CryptoBackend } from '../crypto/types.js';
import { BackchannelError } from '../errors.js';
import { concatBytes, fromHex, toHex, wipe } from '../util/bytes.js';
import { generateCode, codePassword, parseCode, randomChannel } from './code.js';
import type { InviteCode } from './code.js';
import { confirmationTag, cpaceIsk, cpaceShare, parsePrefixFree, prefixFreeCat, verifyConfirmation } from './cpace.js';
import type { CpaceInputs } from './cpace.js';
import { hkdf } from './kdf.js';
import { MAX_POSTING_LENGTH, RENDEZVOUS_TOKEN_LENGTH } from './rendezvous.js';
import type { RendezvousAnswer, RendezvousRequest } from './rendezvous.js';

/** How long an invite stays open by default (issue 18: one hour). */
export const DEFAULT_INVITE_LIFETIME_MS = 3_600_000;
/** The longest invite: the rendezvous keeps a channel a day at most. */
export const MAX_INVITE_LIFETIME_MS = 24 * 3_600_000;
/** Channels an inviter tries before giving up when every one it draws is taken. */
export const MAX_CHANNEL_TRIES = 8;
/** "Nothing under this code" answers an acceptor takes before it says so (a gateway may have just changed). */
export const MAX_EMPTY_READS = 3;
/** The CPace session id the inviter draws. */
const SID_LENGTH = 16;

const te = new TextEncoder();
const CI_PREFIX = te.encode('backchannel invite v1');
const KEY_INFO = te.encode('backchannel invite v1 card keys');
const NONCE = new Uint8Array(12); // each card key seals one card, once

/** Posting kinds (the first byte of a posting). */
const KIND_SHARE = 1; // A: sid, MSGa
const KIND_REPLY = 2; // B: MSGb, Tb, sealed card B
const KIND_FINAL = 3; // A: sid, MSGa, Ta, sealed card A
const KIND_ABORT = 4; // either side: the code did not match; the invite is burned

/** What the messenger provides: a card of ours to give, and where a new contact goes. */
export interface ContactExchange {
  /** A fresh contact card of ours (opaque; at most `maxCardLength` bytes). */
  newCard(): Uint8Array;
  /** Records the new contact `name`, with the card we gave and the one we got. */
  addContact(name: string, ourCard: Uint8Array, theirCard: Uint8Array): void;
}

/**
 * The longest card that fits a posting: the limit less the inviter's final posting's other
 * fields (kind, sid, MSGa and Ta with their lengths, the sealed card's 2-byte length and tag).
 */
export const MAX_CARD_LENGTH = MAX_POSTING_LENGTH - 1 - (1 + 16) - (1 + 34) - (1 + 64) - 2 - 16;

export type InviteRole = 'inviter' | 'acceptor';
/**
 * claiming: the inviter posts its share to claim a channel (no code shown yet);
 * open: the inviter waits for someone to accept; finding: the acceptor reads the inviter's share;
 * replying: the acceptor posts its reply; confirming: the acceptor waits for the inviter's card;
 * finishing: the inviter has the acceptor's card and posts its own; aborting: it posts ABORT;
 * done / failed: the end.
 */
export type InviteStage = 'claiming' | 'open' | 'finding' | 'replying' | 'confirming' | 'finishing' | 'aborting' | 'done' | 'failed';

export interface InviteState {
  readonly id: string;
  readonly role: InviteRole;
  name: string;
  stage: InviteStage;
  code: string;
  channel: number;
  readonly createdAt: number;
  expiresAt: number;
  token: string;
  sid: string | null;
  /** Our CPace scalar (secret: wiped from the state at the end). */
  y: string | null;
  ownMsg: string | null;
  theirMsg: string | null;
  /** The card we give (kept so that a restart gives the same one). */
  ourCard: string | null;
  /** What we post now (replies and finals are posted again until answered). */
  posting: string | null;
  tries: number;
  /** Set once the contact is added (finishing, done). */
  contactAdded: boolean;
  /** Why it failed: a stable code and a message for a person. */
  failure: { code: string; message: string } | null;
}

/** What an answer did to an invite, for progress output. */
export type InviteEvent =
  | { readonly type: 'code'; readonly code: string; readonly expiresAt: number }
  | { readonly type: 'progress'; readonly stage: InviteStage }
  | { readonly type: 'done'; readonly name: string }
  | { readonly type: 'failed'; readonly code: string; readonly message: string };

function inviteError(code: 'ERR_INVITE_STATE' | 'ERR_INVITE_MISMATCH' | 'ERR_INVITE_EXPIRED' | 'ERR_INVITE_PAKE', message: string): BackchannelError {
  return new BackchannelError(code, `invite: ${message}`);
}

export const MISMATCH_MESSAGE = 'the code did not match: ask for a new one';

function cpaceInputs(code: InviteCode, sid: Uint8Array): CpaceInputs {
  return { prs: codePassword(code), ci: concatBytes(CI_PREFIX, Uint8Array.of(code.channel >> 8, code.channel & 0xff)), sid };
}

function cardKeys(c: CryptoBackend, isk: Uint8Array, sid: Uint8Array): { a: Uint8Array; b: Uint8Array } {
  const out = hkdf(c, sid, isk, KEY_INFO, 64);
  try {
    return { a: out.slice(0, 32), b: out.slice(32) };
  } finally {
    wipe(out);
  }
}

function checkLifetime(ms: number): void {
  if (!Number.isInteger(ms) || ms < 60_000 || ms > MAX_INVITE_LIFETIME_MS) throw new RangeError(`an invite lives 1 minute to ${MAX_INVITE_LIFETIME_MS / 60_000} minutes`);
}

/** The state both sides start from: a fresh id and token, nothing exchanged yet. */
function freshState(
  c: CryptoBackend,
  role: InviteState['role'],
  stage: InviteState['stage'],
  code: { text: string; channel: number },
  opts: { name: string; now: number; lifetimeMs?: number },
): InviteState {
  const lifetime = opts.lifetimeMs ?? DEFAULT_INVITE_LIFETIME_MS;
  checkLifetime(lifetime);
  return {
    id: toHex(c.randomBytes(16)),
    role,
    name: opts.name,
    stage,
    code: code.text,
    channel: code.channel,
    createdAt: opts.now,
    expiresAt: opts.now + lifetime,
    token: toHex(c.randomBytes(RENDEZVOUS_TOKEN_LENGTH)),
    sid: null,
    y: null,
    ownMsg: null,
    theirMsg: null,
    ourCard: null,
    posting: null,
    tries: 0,
    contactAdded: false,
    failure: null,
  };
}

/** A new invite (the inviter's side). The code is shown only once the channel is claimed (stage `open`). */
export function newInvite(c: CryptoBackend, opts: { name: string; now: number; lifetimeMs?: number }): InviteState {
  const state = freshState(c, 'inviter', 'claiming', { text: '', channel: 0 }, opts);
  drawChannel(c, state);
  return state;
}

/** A fresh channel and code for an inviter, with a fresh CPace share. */
function drawChannel(c: CryptoBackend, s: InviteState): void {
  const code = generateCode(c.randomBytes, randomChannel(c.randomBytes));
  const sid = c.randomBytes(SID_LENGTH);
  const share = cpaceShare(cpaceInputs(code, sid), new Uint8Array(0), c.randomBytes);
  s.code = code.text;
  s.channel = code.channel;
  s.sid = toHex(sid);
  s.y = toHex(share.y);
  s.ownMsg = toHex(share.msg);
  s.posting = toHex(concatBytes(Uint8Array.of(KIND_SHARE), prefixFreeCat(sid, share.msg)));
  s.tries++;
  wipe(share.y);
}

/**
 * Accepting a code (the acceptor's side).
 * @throws {BackchannelError} ERR_INVITE_CODE for a malformed code.
 */
export function newAccept(c: CryptoBackend, opts: { code: string; name: string; now: number; lifetimeMs?: number }): InviteState {
  return freshState(c, 'acceptor', 'finding', parseCode(opts.code), opts);
}

/** True once the invite has ended (done or failed). */
export function inviteEnded(s: InviteState): boolean {
  return s.stage === 'done' || s.stage === 'failed';
}

/** What to send to the rendezvous next, or null when the invite has ended. (`_now` is kept for callers; requests no longer depend on it.) */
export function inviteRequest(s: InviteState, _now: number): RendezvousRequest | null {
  if (inviteEnded(s)) return null;
  const side = s.role === 'inviter' ? 0 : 1;
  // The whole lifetime, not what remains: a request asked again is then the same bytes, so a late
  // answer to the first serves the second (src/client/client.ts). A channel is made by the first
  // post, at the invite's start, and the gateway caps the lifetime anyway.
  const lifetimeS = Math.max(1, Math.ceil((s.expiresAt - s.createdAt) / 1000));
  const base = { channel: s.channel, side, token: fromHex(s.token), lifetimeS } as const;
  switch (s.stage) {
    case 'claiming':
    case 'replying':
    case 'finishing':
    case 'aborting':
      return { ...base, op: 'post', posting: fromHex(s.posting!) };
    case 'open':
    case 'finding':
    case 'confirming':
      return { ...base, op: 'read', posting: new Uint8Array(0) };
    default:
      return null;
  }
}

function fail(s: InviteState, code: string, message: string): InviteEvent {
  s.stage = 'failed';
  s.failure = { code, message };
  wipeSecrets(s);
  return { type: 'failed', code, message };
}

function wipeSecrets(s: InviteState): void {
  s.y = null;
  s.posting = null;
  s.ourCard = null;
}

/** Ends an invite that outlived its time (the manager calls it when `now` passes expiresAt). */
export function expireInvite(s: InviteState): InviteEvent | null {
  if (inviteEnded(s)) return null;
  const message = s.role === 'inviter' ? 'the invite expired before anyone accepted it; make a new one' : 'the code expired (or no invite was open under it); ask for a new one';
  return fail(s, 'ERR_INVITE_EXPIRED', message);
}

/** Cancels an invite (the user asked); it is then burned like a failed one. */
export function cancelInvite(s: InviteState): InviteEvent | null {
  if (inviteEnded(s)) return null;
  return fail(s, 'ERR_INVITE_STATE', 'the invite was cancelled');
}

/**
 * Applies a rendezvous answer (or null: none came in time, the request is simply made again) and
 * returns what changed. Calls `exchange` for a card and to add the contact.
 */
export function onInviteAnswer(s: InviteState, answer: RendezvousAnswer | null, c: CryptoBackend, exchange: ContactExchange, maxCardLength = MAX_CARD_LENGTH): InviteEvent[] {
  if (answer === null || inviteEnded(s)) return [];
  if (answer.status === 'bad') return [fail(s, 'ERR_RENDEZVOUS', 'the rendezvous refused our request (a bug, or a different version)')];
  if (answer.status === 'full') return [fail(s, 'ERR_RENDEZVOUS', 'the rendezvous gateway is full; try again in a while')];
  try {
    return s.role === 'inviter' ? inviterStep(s, answer, c, exchange, maxCardLength) : acceptorStep(s, answer, c, exchange, maxCardLength);
  } catch (e) {
    if (e instanceof BackchannelError && (e.code === 'ERR_INVITE_PAKE' || e.code === 'ERR_INVITE_MISMATCH')) return abortOrFail(s);
    if (e instanceof BackchannelError) return [fail(s, e.code, e.message)];
    throw e;
  }
}

/** A wrong code: the inviter posts ABORT in its place (and fails once that is answered); the acceptor fails at once. */
function abortOrFail(s: InviteState): InviteEvent[] {
  if (s.role === 'inviter') {
    s.stage = 'aborting';
    s.y = null;
    s.ourCard = null;
    s.posting = toHex(Uint8Array.of(KIND_ABORT));
    return [{ type: 'progress', stage: 'aborting' }];
  }
  return [fail(s, 'ERR_INVITE_MISMATCH', MISMATCH_MESSAGE)];
}

function parsePosting(p: Uint8Array): { kind: number; parts: Uint8Array[] } {
  const kind = p[0];
  const counts: Record<number, number> = { [KIND_SHARE]: 2, [KIND_REPLY]: 3, [KIND_FINAL]: 4, [KIND_ABORT]: 0 };
  const n = kind === undefined ? undefined : counts[kind];
  if (n === undefined) throw inviteError('ERR_INVITE_PAKE', 'a posting of an unknown kind');
  return { kind: kind!, parts: n === 0 ? [] : parsePrefixFree(p.subarray(1), n) };
}

function sealCard(c: CryptoBackend, key: Uint8Array, channel: number, card: Uint8Array): Uint8Array {
  return c.chacha20Poly1305Seal(key, NONCE, Uint8Array.of(channel >> 8, channel & 0xff), card);
}

function openCard(c: CryptoBackend, key: Uint8Array, channel: number, sealed: Uint8Array): Uint8Array {
  const card = c.chacha20Poly1305Open(key, NONCE, Uint8Array.of(channel >> 8, channel & 0xff), sealed);
  if (card === null) throw inviteError('ERR_INVITE_MISMATCH', MISMATCH_MESSAGE);
  return card;
}

function freshCard(s: InviteState, exchange: ContactExchange, maxCardLength: number): Uint8Array {
  if (s.ourCard !== null) return fromHex(s.ourCard);
  const card = exchange.newCard();
  if (!(card instanceof Uint8Array) || card.length === 0 || card.length > maxCardLength) throw new RangeError(`a contact card must be 1 to ${maxCardLength} bytes`);
  s.ourCard = toHex(card);
  return card;
}

function inviterStep(s: InviteState, answer: RendezvousAnswer, c: CryptoBackend, exchange: ContactExchange, maxCardLength: number): InviteEvent[] {
  switch (s.stage) {
    case 'claiming': {
      if (answer.status === 'taken') {
        if (s.tries >= MAX_CHANNEL_TRIES) return [fail(s, 'ERR_RENDEZVOUS', 'every channel tried was taken; try again in a while')];
        drawChannel(c, s);
        return [];
      }
      s.stage = 'open';
      const events: InviteEvent[] = [{ type: 'code', code: s.code, expiresAt: s.expiresAt }];
      // Someone may have posted a reply already (a quick acceptor, or a squatter): read it now.
      if (answer.status === 'posting') events.push(...inviterStep(s, answer, c, exchange, maxCardLength));
      return events;
    }
    case 'open': {
      if (answer.status !== 'posting') return [];
      const { kind, parts } = parsePosting(answer.posting);
      if (kind === KIND_ABORT) return [fail(s, 'ERR_INVITE_MISMATCH', MISMATCH_MESSAGE)];
      if (kind !== KIND_REPLY) throw inviteError('ERR_INVITE_PAKE', 'an unexpected posting');
      const [msgB, tagB, sealedB] = parts as [Uint8Array, Uint8Array, Uint8Array];
      const code = parseCode(s.code);
      const sid = fromHex(s.sid!);
      const inputs = cpaceInputs(code, sid);
      const own = { y: fromHex(s.y!), msg: fromHex(s.ownMsg!) };
      const isk = cpaceIsk(inputs, own, msgB, 'initiator');
      try {
        if (!verifyConfirmation(isk, msgB, tagB)) throw inviteError('ERR_INVITE_MISMATCH', MISMATCH_MESSAGE);
        const keys = cardKeys(c, isk, sid);
        try {
          const theirCard = openCard(c, keys.b, code.channel, sealedB);
          const ourCard = freshCard(s, exchange, maxCardLength);
          const tagA = confirmationTag(isk, own.msg);
          s.posting = toHex(concatBytes(Uint8Array.of(KIND_FINAL), prefixFreeCat(sid, own.msg, tagA, sealCard(c, keys.a, code.channel, ourCard))));
          s.theirMsg = toHex(msgB);
          s.y = null;
          s.stage = 'finishing';
          exchange.addContact(s.name, ourCard, theirCard);
          s.contactAdded = true;
          return [{ type: 'progress', stage: 'finishing' }];
        } finally {
          wipe(keys.a, keys.b);
        }
      } finally {
        wipe(isk, own.y);
      }
    }
    case 'finishing':
      // Our card is posted: the acceptor reads it whenever it asks next.
      s.stage = 'done';
      wipeSecrets(s);
      return [{ type: 'done', name: s.name }];
    case 'aborting':
      return [fail(s, 'ERR_INVITE_MISMATCH', MISMATCH_MESSAGE)];
    default:
      return [];
  }
}

function acceptorStep(s: InviteState, answer: RendezvousAnswer, c: CryptoBackend, exchange: ContactExchange, maxCardLength: number): InviteEvent[] {
  switch (s.stage) {
    case 'finding': {
      if (answer.status !== 'posting') {
        s.tries++;
        if (s.tries >= MAX_EMPTY_READS) return [fail(s, 'ERR_INVITE_STATE', 'no invite is open under this code (it expired, or the number is wrong); ask for a new one')];
        return [];
      }
      const { kind, parts } = parsePosting(answer.posting);
      if (kind === KIND_ABORT || kind === KIND_FINAL) return [fail(s, 'ERR_INVITE_STATE', 'this code was used already; ask for a new one')];
      if (kind !== KIND_SHARE) throw inviteError('ERR_INVITE_PAKE', 'an unexpected posting');
      const [sid, msgA] = parts as [Uint8Array, Uint8Array];
      const code = parseCode(s.code);
      const inputs = cpaceInputs(code, sid);
      const own = cpaceShare(inputs, new Uint8Array(0), c.randomBytes);
      const isk = cpaceIsk(inputs, own, msgA, 'responder');
      try {
        const keys = cardKeys(c, isk, sid);
        try {
          const ourCard = freshCard(s, exchange, maxCardLength);
          const tagB = confirmationTag(isk, own.msg);
          s.posting = toHex(concatBytes(Uint8Array.of(KIND_REPLY), prefixFreeCat(own.msg, tagB, sealCard(c, keys.b, code.channel, ourCard))));
        } finally {
          wipe(keys.a, keys.b);
        }
      } finally {
        wipe(isk);
      }
      s.sid = toHex(sid);
      s.y = toHex(own.y);
      s.ownMsg = toHex(own.msg);
      s.theirMsg = toHex(msgA);
      wipe(own.y);
      s.stage = 'replying';
      return [{ type: 'progress', stage: 'replying' }];
    }
    case 'replying':
      if (answer.status === 'taken') return [fail(s, 'ERR_INVITE_STATE', 'someone else accepted this code first; ask for a new one')];
      s.stage = 'confirming';
      return [{ type: 'progress', stage: 'confirming' }, ...acceptorStep(s, answer, c, exchange, maxCardLength)];
    case 'confirming': {
      if (answer.status !== 'posting') return [];
      const { kind, parts } = parsePosting(answer.posting);
      if (kind === KIND_ABORT) return [fail(s, 'ERR_INVITE_MISMATCH', MISMATCH_MESSAGE)];
      if (kind === KIND_SHARE) return []; // the inviter has not read our reply yet
      if (kind !== KIND_FINAL) throw inviteError('ERR_INVITE_PAKE', 'an unexpected posting');
      const [sid, msgA, tagA, sealedA] = parts as [Uint8Array, Uint8Array, Uint8Array, Uint8Array];
      if (toHex(sid) !== s.sid || toHex(msgA) !== s.theirMsg) throw inviteError('ERR_INVITE_MISMATCH', MISMATCH_MESSAGE);
      const code = parseCode(s.code);
      const inputs = cpaceInputs(code, sid);
      const own = { y: fromHex(s.y!), msg: fromHex(s.ownMsg!) };
      const isk = cpaceIsk(inputs, own, msgA, 'responder');
      try {
        if (!verifyConfirmation(isk, msgA, tagA)) throw inviteError('ERR_INVITE_MISMATCH', MISMATCH_MESSAGE);
        const keys = cardKeys(c, isk, sid);
        try {
          const theirCard = openCard(c, keys.a, code.channel, sealedA);
          exchange.addContact(s.name, fromHex(s.ourCard!), theirCard);
          s.contactAdded = true;
        } finally {
          wipe(keys.a, keys.b);
        }
      } finally {
        wipe(isk, own.y);
      }
      s.stage = 'done';
      wipeSecrets(s);
      return [{ type: 'done', name: s.name }];
    }
    default:
      return [];
  }
}

/** The state as bytes for the store (JSON: every field is a string, number, boolean or null). */
export function encodeInviteState(s: InviteState): Uint8Array {
  return te.encode(JSON.stringify(s));
}

/** @throws {BackchannelError} ERR_INVITE_STATE for bytes that are not an invite's state. */
export function decodeInviteState(bytes: Uint8Array): InviteState {
  let v: unknown;
  try {
    v = JSON.parse(new TextDecoder().decode(bytes));
  } catch {
    throw inviteError('ERR_INVITE_STATE', 'a stored invite is corrupt');
  }
  const o = v as Partial<InviteState> | null;
  if (o === null || typeof o !== 'object' || typeof o.id !== 'string' || (o.role !== 'inviter' && o.role !== 'acceptor') || typeof o.stage !== 'string' || typeof o.expiresAt !== 'number' || typeof o.token !== 'string') {
    throw inviteError('ERR_INVITE_STATE', 'a stored invite is corrupt');
  }
  return o as InviteState;
}

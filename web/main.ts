/**
 * The page: starts the worker that runs the client (web/worker.ts) with the network's connection
 * details (/network.json, served by `backchannel web`), and shows what it reports. The page
 * itself holds no keys and runs no clock that matters: a hidden tab may throttle it freely.
 *
 * Views (no framework; plain DOM, rebuilt only where something changed so that focus and screen
 * readers stay calm): a join step for a new profile (a name, a gateway; the worker makes the keys),
 * the contacts, adding one by invite code, introductions, one conversation with each message's
 * state and the contact's safety number, the network panel, one-off messages and "You".
 *
 * Contacts are renamed, blocked or removed (after a confirmation) from the conversation's
 * "Contact" panel; each shows its unread count in the list until its conversation is on screen.
 * Files go from the conversation's file field and come as download links (Blob URLs).
 *
 * A page opened as /?gateway=NAME with no profile yet joins that gateway at once (an operator's
 * link; the tests use it); /?gateway=NAME&name=N also sets the name.
 */
import { MAX_FILE_LENGTH, MAX_FILE_NAME } from '../src/messaging/content.js';
import type { ContactView, FromWorker, HistoryView, IntroductionView, InviteView, ReceivingView, StatusView, ToWorker } from './protocol.js';

/** The IndexedDB database the worker keeps the profile in (web/worker.ts, PROFILE). */
const PROFILE_DB = 'backchannel-client';
/** The window over which the network panel's packet rates are taken. */
const RATE_WINDOW_MS = 10_000;
/** The longest pause between attempts to load the network's connection details. */
const NETWORK_RETRY_MAX_MS = 30_000;

function el(id: string): HTMLElement {
  const e = document.getElementById(id);
  if (e === null) throw new Error(`page: no #${id}`);
  return e;
}

function input(id: string): HTMLInputElement {
  return el(id) as HTMLInputElement;
}

function select(id: string): HTMLSelectElement {
  return el(id) as HTMLSelectElement;
}

function text(id: string, value: string): void {
  const e = el(id);
  if (e.textContent !== value) e.textContent = value;
}

function node<K extends keyof HTMLElementTagNameMap>(tag: K, props: { text?: string; cls?: string } = {}, ...children: Node[]): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  if (props.text !== undefined) e.textContent = props.text;
  if (props.cls !== undefined) e.className = props.cls;
  e.append(...children);
  return e;
}

/** What the tests read (window.backchannel): the last state, status and error the worker reported, and when the page connected. */
const view = {
  state: 'loading',
  address: null as string | null,
  fresh: null as boolean | null,
  /** The profile's own name (kept in this browser only). */
  name: null as string | null,
  /** 'join' while the join step is shown, 'app' after. */
  screen: 'loading' as 'loading' | 'join' | 'app',
  status: null as StatusView | null,
  /** Status reports had (one a second): a test waits for one taken after a moment it chose. */
  reports: 0,
  error: null as { code: string; message: string } | null,
  /** Every problem shown now, oldest first (`error` is the newest); each goes when the worker says it is over. */
  errors: [] as Array<{ code: string; message: string }>,
  /** Large messages part-way in, by contact. */
  receiving: [] as readonly ReceivingView[],
  /** Download links made for files in the conversation on screen: history id -> Blob URL. */
  files: {} as Record<string, string>,
  /** Milliseconds from navigation start to the first 'connected'. */
  connectedAfterMs: null as number | null,
  /** Received one-off messages by id (hex), and our sent ones' states. */
  received: {} as Record<string, string>,
  sent: {} as Record<string, { text: string; state: string }>,
  contacts: [] as readonly ContactView[],
  history: {} as Readonly<Record<string, readonly HistoryView[]>>,
  invites: [] as readonly InviteView[],
  introductions: [] as readonly IntroductionView[],
  /** The packet rates the network panel shows (per second over the last RATE_WINDOW_MS). */
  rates: { real: 0, cover: 0 },
};
Object.assign(globalThis, { backchannel: view });

let worker: Worker | null = null;
let nextRequest = 1;
/** One-off sends waiting for the worker's answer: request id -> text. */
const sends = new Map<number, string>();
/** Other requests waiting for their answer: request id -> the element that shows the outcome, what to say on success, and what to do then. */
const asks = new Map<number, { out: string; ok: string; then?: () => void }>();
/** A name to set once the worker runs (chosen at the join step). */
let pendingName: string | null = null;

function postToWorker(m: ToWorker): void {
  worker?.postMessage(m);
}

/** Sends a request whose answer is a 'done'; its outcome goes to element `out`. */
function ask(out: string, ok: string, make: (requestId: number) => ToWorker, then?: () => void, transfer?: Transferable[]): void {
  const requestId = nextRequest++;
  asks.set(requestId, { out, ok, ...(then === undefined ? {} : { then }) });
  text(out, 'Working…');
  const m = make(requestId);
  if (transfer === undefined) postToWorker(m);
  else worker?.postMessage(m, transfer);
}

/** The problems shown, by code, oldest first: each stays until its cause is gone. */
const problems = new Map<string, string>();

function showProblems(): void {
  const list = [...problems].map(([code, message]) => ({ code, message }));
  view.errors = list;
  view.error = list[list.length - 1] ?? null;
  const e = el('error');
  e.replaceChildren(...list.map((p) => node('p', { text: p.message })));
  e.hidden = list.length === 0;
}

function showError(code: string, message: string): void {
  problems.delete(code);
  problems.set(code, message);
  showProblems();
}

/** The problem shown under `code` has passed (the worker said `resolved`, or the page's own retry worked). */
function clearError(code: string): void {
  if (problems.delete(code)) showProblems();
}

// ---- the network panel ----

const samples: Array<{ at: number; real: number; cover: number }> = [];

function showStatus(s: StatusView): void {
  view.status = s;
  view.reports++;
  const now = performance.now();
  samples.push({ at: now, real: s.packetsSent.real, cover: s.packetsSent.drop + s.packetsSent.loop });
  while (samples.length > 2 && now - samples[1]!.at >= RATE_WINDOW_MS) samples.shift();
  const first = samples[0]!;
  const last = samples[samples.length - 1]!;
  if (last.at > first.at) {
    const secs = (last.at - first.at) / 1000;
    view.rates = { real: (last.real - first.real) / secs, cover: (last.cover - first.cover) / secs };
    text('rate-real', view.rates.real.toFixed(1));
    text('rate-cover', view.rates.cover.toFixed(1));
  }
  text('gateway', s.gateway ?? '…');
  text('connected', s.connected ? 'yes' : 'no');
  text('epoch', s.epoch === null ? '…' : String(s.epoch));
  text('document', s.document);
  text('packets', `${s.packetsSent.real} / ${s.packetsSent.drop} / ${s.packetsSent.loop}`);
  if (s.crypto !== undefined) text('crypto', s.crypto.x25519);
}

function showState(state: string): void {
  view.state = state;
  const words: Record<string, string> = { starting: 'starting…', connecting: 'connecting…', connected: 'connected', disconnected: 'not connected, retrying', stopped: 'stopped' };
  text('state', words[state] ?? state);
  el('conn-dot').className = `dot ${state}`;
}

// ---- lists ----

/** Replaces a list's items when their content changed (keyed by `key`), else leaves the DOM alone. */
function fillList(id: string, key: string, make: () => HTMLElement[]): void {
  const list = el(id);
  if (list.dataset['key'] === key) return;
  list.dataset['key'] = key;
  list.replaceChildren(...make());
}

/** Fills a <select> with `names` (keeping the choice), with an optional first placeholder. */
function fillSelect(s: HTMLSelectElement, names: readonly string[], placeholder?: string): void {
  const values = placeholder === undefined ? names : ['', ...names];
  if ([...s.options].map((o) => o.value).join('\n') === values.join('\n')) return;
  const chosen = s.value;
  s.replaceChildren(...(placeholder === undefined ? [] : [new Option(placeholder, '')]), ...names.map((n) => new Option(n, n)));
  if (names.includes(chosen)) s.value = chosen;
}

const SESSION_WORDS: Record<string, string> = { starting: 'setting up', waiting: 'waiting for their first message', up: 'ready' };

function showContacts(contacts: readonly ContactView[]): void {
  const current = select('conv-contact').value;
  el('no-contacts').hidden = contacts.length > 0;
  fillList('contacts', JSON.stringify([contacts.map((c) => [c.name, c.session, c.verified, c.blocked, c.unread]), current]), () =>
    contacts.map((c) => {
      const sub = c.blocked === true ? 'blocked' : `${c.verified ? '✓ verified · ' : ''}${SESSION_WORDS[c.session] ?? c.session}`;
      const who = node('span', { cls: 'who' }, node('span', { text: c.name }));
      const unread = c.unread ?? 0;
      if (unread > 0) {
        // Seen as a badge; heard as ", N unread" (part of the button's name).
        const badge = node('span', { text: String(unread), cls: 'unread' });
        badge.setAttribute('aria-hidden', 'true');
        who.append(' ', badge, node('span', { text: `, ${unread} unread`, cls: 'sr-only' }));
      }
      const b = node('button', { cls: `contact${c.blocked === true ? ' blocked' : ''}` }, who, node('span', { text: sub, cls: 'sub' }));
      b.type = 'button';
      if (c.name === current) b.setAttribute('aria-current', 'true');
      b.addEventListener('click', () => openConversation(c.name));
      return node('li', {}, b);
    }),
  );
  const names = contacts.map((c) => c.name);
  fillSelect(select('conv-contact'), names, 'Pick a contact');
  fillSelect(select('intro-a'), names);
  fillSelect(select('intro-b'), names);
  if (select('intro-b').value === select('intro-a').value && names.length > 1) select('intro-b').value = names.find((n) => n !== select('intro-a').value)!;
}

/** Invites that can still be cancelled (not ended, not being cancelled). */
const INVITE_ENDED = new Set(['done', 'failed', 'aborting']);

function showInvites(invites: readonly InviteView[]): void {
  fillList('invites', JSON.stringify(invites), () =>
    invites.map((i) => {
      const li = node('li', { text: `${i.name}: ${i.failure ?? i.stage}` });
      if (i.code !== null) li.append(' — code ', node('code', { text: i.code, cls: 'code' }));
      if (!INVITE_ENDED.has(i.stage)) {
        const cancel = node('button', { text: 'Cancel', cls: 'small' });
        cancel.type = 'button';
        cancel.setAttribute('aria-label', `Cancel the invite for ${i.name}`);
        cancel.addEventListener('click', () => ask('contacts-result', `Invite for ${i.name} cancelled: its code no longer works.`, (requestId) => ({ type: 'cancel-invite', requestId, id: i.id })));
        li.append(' ', cancel);
      }
      return li;
    }),
  );
}

function introText(i: IntroductionView): string {
  const other = i.names[0] === '' || i.names[0] === undefined ? '(no name given)' : i.names[0];
  if (i.role === 'made') return `You introduced ${i.names[0] ?? ''} (${i.answers[0] ?? ''}) and ${i.names[1] ?? ''} (${i.answers[1] ?? ''}): ${i.state}`;
  switch (i.state) {
    case 'offered': return `${i.from ?? '?'} offers to introduce you to ${other}`;
    case 'accepted': return `${i.from ?? '?'}'s introduction to ${other}: you accepted; waiting for their answer`;
    case 'done': return `${i.from ?? '?'} introduced you to ${other}, now your contact`;
    case 'declined': return `${i.from ?? '?'}'s introduction to ${other}: declined`;
    case 'expired': return `${i.from ?? '?'}'s introduction to ${other}: not answered by both in time`;
    default: return `${i.from ?? '?'}'s introduction to ${other}: the card that came could not be used`;
  }
}

function showIntroductions(intros: readonly IntroductionView[]): void {
  fillList('introductions', JSON.stringify(intros.map((i) => [i.id, i.state, i.answers, i.names])), () =>
    [...intros].reverse().map((i) => {
      const li = node('li', {}, node('span', { text: introText(i) }));
      li.dataset['id'] = String(i.id);
      if (i.role === 'received' && i.state === 'offered') {
        const f = node('form', { cls: 'row answer' });
        const id = `intro-name-${i.id}`;
        const label = node('label', { text: 'Name for them' });
        label.htmlFor = id;
        const name = node('input');
        name.id = id;
        name.value = i.names[0] ?? '';
        name.maxLength = 64;
        name.required = true;
        const accept = node('button', { text: 'Accept' });
        accept.type = 'submit';
        accept.setAttribute('aria-label', `Accept the introduction to ${i.names[0] ?? ''}`);
        const decline = node('button', { text: 'Decline' });
        decline.type = 'button';
        decline.setAttribute('aria-label', `Decline the introduction to ${i.names[0] ?? ''}`);
        f.append(label, name, accept, decline);
        f.addEventListener('submit', (ev) => {
          ev.preventDefault();
          const n = name.value.trim();
          ask('intro-result', `Accepted: ${n} becomes your contact once they accept too.`, (requestId) => ({ type: 'answer-introduction', requestId, id: i.id, accept: true, ...(n === '' ? {} : { name: n }) }));
        });
        decline.addEventListener('click', () => ask('intro-result', 'Declined.', (requestId) => ({ type: 'answer-introduction', requestId, id: i.id, accept: false })));
        li.append(f);
      }
      return li;
    }),
  );
}

// ---- the conversation, its files and its safety number ----

const STATE_WORDS: Record<string, string> = { queued: 'queued', sent: 'sent', delivered: 'delivered', failed: 'failed', receiving: 'arriving…', received: 'received' };

/** "12.3 kB" (SI units, as a file manager shows a size). */
function size(bytes: number): string {
  if (bytes < 1000) return `${bytes} bytes`;
  if (bytes < 1_000_000) return `${(bytes / 1000).toFixed(1)} kB`;
  return `${(bytes / 1_000_000).toFixed(2)} MB`;
}

/** Files asked of the worker and not yet come, and those it did not have (history ids): each asked once. */
const fileAsked = new Set<number>();
const fileMissing = new Set<number>();
/** The Blob URLs kept, oldest first: at most MAX_FILE_LINKS beyond those of the conversation on screen (others are revoked, and asked again when shown). */
const MAX_FILE_LINKS = 50;

function fileLink(id: number): string | undefined {
  return view.files[String(id)];
}

/** Asks the worker for the bytes of the files in the conversation on screen that have no link yet. */
function askFiles(rows: readonly HistoryView[]): void {
  for (const h of rows) {
    if (h.kind !== 'file' || h.state === 'receiving' || fileLink(h.id) !== undefined || fileAsked.has(h.id) || fileMissing.has(h.id)) continue;
    fileAsked.add(h.id);
    postToWorker({ type: 'get-file', id: h.id });
  }
}

function onFile(m: Extract<FromWorker, { type: 'file' }>): void {
  fileAsked.delete(m.id);
  if (m.data === null) {
    fileMissing.add(m.id);
    return;
  }
  // Past MAX_FILE_LINKS, the oldest link of another conversation goes (those on screen stay).
  const keys = Object.keys(view.files);
  if (keys.length >= MAX_FILE_LINKS) {
    const shown = new Set((view.history[select('conv-contact').value] ?? []).map((h) => String(h.id)));
    const old = keys.find((k) => !shown.has(k));
    if (old !== undefined) {
      URL.revokeObjectURL(view.files[old]!);
      delete view.files[old];
    }
  }
  view.files[String(m.id)] = URL.createObjectURL(new Blob([m.data as Uint8Array<ArrayBuffer>]));
  showConversation();
}

/** What a conversation row says of its state: a sending file's fragments, else the state in words. */
function stateWords(h: HistoryView): string {
  if (h.direction === 'out' && h.state === 'queued' && h.progress !== null && h.progress !== undefined) {
    return `sending: ${Math.floor((100 * h.progress.done) / h.progress.total)} %, ${h.progress.done}/${h.progress.total} fragments`;
  }
  return STATE_WORDS[h.state] ?? h.state;
}

function messageRow(h: HistoryView): HTMLElement {
  const li = node('li', { cls: h.direction });
  if (h.kind === 'file') {
    const name = h.fileName === null || h.fileName === undefined || h.fileName === '' ? 'file' : h.fileName;
    const what = `${name} (${h.fileLength === null || h.fileLength === undefined ? '?' : size(h.fileLength)})`;
    const href = fileLink(h.id);
    li.append(node('span', { text: 'File', cls: 'tag' }), ' ');
    if (href !== undefined) {
      const a = node('a', { text: what, cls: 'body file' });
      a.href = href;
      a.download = name;
      a.setAttribute('aria-label', `Download ${what}`);
      li.append(a);
    } else li.append(node('span', { text: what, cls: 'body file' }));
  } else li.append(node('span', { text: h.text, cls: 'body' }));
  if (h.direction === 'out' || h.state === 'receiving') li.append(' ', node('span', { text: `(${stateWords(h)})`, cls: `state ${h.state}` }));
  return li;
}

/** When the conversation with a contact was last marked read (so that it is asked once per change). */
let markedRead: { contact: string; unread: number } | null = null;

/** The conversation on screen is read: its unread count goes (in the worker's store too). */
function markShownRead(): void {
  const name = select('conv-contact').value;
  const c = view.contacts.find((x) => x.name === name);
  if (c === undefined || document.visibilityState !== 'visible') return;
  const unread = c.unread ?? 0;
  if (unread === 0) {
    markedRead = null;
    return;
  }
  if (markedRead?.contact === name && markedRead.unread === unread) return;
  markedRead = { contact: name, unread };
  postToWorker({ type: 'mark-read', contact: name });
}

function openConversation(name: string): void {
  select('conv-contact').value = name;
  showConversation();
  showContacts(view.contacts);
  el('say-text').focus();
}

/** The tab's session storage key of the conversation on screen, so that a reload shows it again. */
const OPEN_CONVERSATION_KEY = 'backchannel.conversation';
/** Whether the conversation on screen before a reload has been put back (once, at the first state). */
let conversationRestored = false;

function restoreConversation(contacts: readonly ContactView[]): void {
  if (conversationRestored) return;
  conversationRestored = true;
  let saved: string | null = null;
  try {
    saved = sessionStorage.getItem(OPEN_CONVERSATION_KEY);
  } catch {
    return;
  }
  if (saved !== null && select('conv-contact').value === '' && contacts.some((c) => c.name === saved)) {
    select('conv-contact').value = saved;
    showContacts(contacts);
  }
}

function showConversation(): void {
  const name = select('conv-contact').value;
  if (conversationRestored) {
    try {
      sessionStorage.setItem(OPEN_CONVERSATION_KEY, name);
    } catch {
      // No session storage (blocked site data): a reload then shows no conversation.
    }
  }
  const rows = view.history[name] ?? [];
  const contact = view.contacts.find((c) => c.name === name);
  askFiles(rows);
  fillList('conversation', JSON.stringify([name, rows.map((h) => [h.id, h.state, h.text, h.progress, fileLink(h.id) ?? null])]), () => rows.map(messageRow));
  text('conv-empty', contact === undefined ? 'Pick a contact, or add one with an invite code.' : rows.length === 0 ? `No messages with ${name} yet.` : '');
  el('conv-empty').hidden = contact !== undefined && rows.length > 0;
  const incoming = view.receiving.filter((r) => r.contact === name);
  text('receiving', incoming.map((r) => `Receiving a file or a long text from ${name}: ${Math.floor((100 * r.have) / r.total)} %, ${r.have}/${r.total} fragments.`).join(' '));
  const blocked = contact?.blocked === true;
  el('conv-blocked').hidden = !blocked;
  text('conv-blocked', blocked ? `You blocked ${name}: what they send is dropped, and you cannot write to them. Unblock them under Contact.` : '');
  for (const id of ['say-text', 'say-send', 'file-input', 'file-send']) (el(id) as HTMLInputElement).disabled = contact === undefined || blocked;
  (el('verify-open') as HTMLButtonElement).disabled = contact === undefined;
  (el('contact-open') as HTMLButtonElement).disabled = contact === undefined;
  text('conv-badge', contact === undefined ? '' : blocked ? 'blocked' : contact.verified ? '✓ verified' : 'not verified');
  el('conv-badge').className = `badge${contact?.verified === true && !blocked ? ' ok' : ''}`;
  if (contact === undefined) {
    for (const [panel, button] of [['verify', 'verify-open'], ['contact-panel', 'contact-open']] as const) {
      el(panel).hidden = true;
      el(button).setAttribute('aria-expanded', 'false');
    }
    return;
  }
  markShownRead();
  text('verify-h', `Safety number with ${name}`);
  text('verify-help', `${name} sees the same 60 digits for you. Compare them in person or over a channel you trust (reading them out on a call you know is theirs). If every group matches, no one in between swapped your keys: mark ${name} as verified.`);
  const groups = contact.safetyNumber.split(' ');
  fillList('safety-number', contact.safetyNumber, () => groups.map((g) => node('span', { text: g, cls: 'group' })));
  text('verify-state', contact.verified ? `You verified ${name}'s safety number.` : `${name} is not verified.`);
  text('verify-toggle', contact.verified ? 'Clear verification' : 'Mark as verified');
  text('contact-h', `Contact: ${name}`);
  text('block-help', blocked
    ? `${name} is blocked: what they send stops at your gateway. Unblocking gives them a new address to write to, inside your conversation (what they sent meanwhile is lost).`
    : `Blocking drops what ${name} sends from now on and stops you writing to them; ${name} is not told. You can unblock later.`);
  text('block-toggle', blocked ? `Unblock ${name}` : `Block ${name}`);
  text('remove-open', `Remove ${name}…`);
}

function showMessenger(m: Extract<FromWorker, { type: 'messenger' }>): void {
  view.contacts = m.contacts;
  view.history = m.history;
  view.invites = m.invites;
  view.introductions = m.introductions ?? [];
  view.receiving = m.receiving ?? [];
  showContacts(m.contacts);
  restoreConversation(m.contacts);
  showInvites(m.invites);
  showIntroductions(view.introductions);
  showConversation();
}

// ---- the worker's messages ----

function onMessage(m: FromWorker): void {
  switch (m.type) {
    case 'identity':
      view.address = m.address;
      view.fresh = m.fresh;
      text('address', m.address);
      text('gateway', m.gateway);
      break;
    case 'profile':
      view.name = m.name;
      text('me-name', m.name ?? '');
      text('name', m.name ?? 'not set');
      if (m.name === null) text('name-result', 'Pick a name for this profile (only you see it).');
      break;
    case 'state':
      showState(m.state);
      // 'connecting' comes once the worker runs the client: it can take the profile's name now.
      if (m.state === 'connecting') {
        if (pendingName !== null) {
          const name = pendingName;
          pendingName = null;
          ask('name-result', '', (requestId) => ({ type: 'set-name', requestId, name }));
        } else postToWorker({ type: 'get-profile' });
      }
      if (m.state === 'connected' && view.connectedAfterMs === null) view.connectedAfterMs = performance.now();
      break;
    case 'status':
      showStatus(m.status);
      break;
    case 'queued': {
      const pending = sends.get(m.requestId);
      sends.delete(m.requestId);
      if (m.id === null) {
        text('send-result', m.error ?? 'Not sent.');
        break;
      }
      text('send-result', 'Queued.');
      view.sent[m.id] = { text: pending ?? '', state: 'queued' };
      const li = node('li', { text: `${pending ?? ''} — queued` });
      li.id = `sent-${m.id}`;
      el('sent').append(li);
      break;
    }
    case 'outgoing': {
      const s = view.sent[m.id];
      if (s === undefined) break;
      s.state = m.state;
      const li = document.getElementById(`sent-${m.id}`);
      if (li !== null) li.textContent = `${s.text} — ${m.state}`;
      break;
    }
    case 'message': {
      if (view.received[m.id] !== undefined) break;
      view.received[m.id] = m.text;
      el('received').append(node('li', { text: m.text }));
      break;
    }
    case 'done': {
      const a = asks.get(m.requestId);
      asks.delete(m.requestId);
      text(a?.out ?? 'contacts-result', m.error ?? a?.ok ?? '');
      if (m.error === null) a?.then?.();
      break;
    }
    case 'file':
      onFile(m);
      break;
    case 'messenger':
      showMessenger(m);
      break;
    case 'error':
      showError(m.code, m.message);
      break;
    case 'resolved':
      clearError(m.code);
      break;
  }
}

// ---- start-up: join, or start the profile this browser has ----

async function hasProfile(): Promise<boolean> {
  try {
    const dbs = await indexedDB.databases();
    return dbs.some((d) => d.name === PROFILE_DB);
  } catch {
    return false;
  }
}

function startWorker(network: unknown, gateway: string | null): void {
  view.screen = 'app';
  el('join').hidden = true;
  el('app').hidden = false;
  el('jump').hidden = false;
  worker = new Worker(new URL('worker.js', import.meta.url), { type: 'module' });
  worker.onmessage = (ev: MessageEvent<FromWorker>) => onMessage(ev.data);
  worker.onerror = () => showError('ERR_WORKER', 'The client stopped unexpectedly; reload the page.');
  // ?token=HEX: an invitation token for a gateway that admits by token.
  postToWorker({ type: 'start', network, gateway, token: new URLSearchParams(location.search).get('token') });
}

function showJoin(network: unknown, preselect: string | null): void {
  view.screen = 'join';
  el('join').hidden = false;
  const gateways = ((network as { gateways?: Array<{ name?: unknown; wsAddress?: unknown }> }).gateways ?? [])
    .filter((g) => typeof g.name === 'string' && typeof g.wsAddress === 'string')
    .map((g) => g.name as string);
  const s = select('join-gateway');
  s.replaceChildren(new Option('Any (chosen at random)', ''), ...gateways.map((g) => new Option(g, g)));
  if (preselect !== null && gateways.includes(preselect)) s.value = preselect;
  input('join-name').focus();
  el('join-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const name = input('join-name').value.trim();
    if (name === '') return;
    pendingName = name;
    startWorker(network, s.value === '' ? null : s.value);
  });
}

/** Sends the file chosen in the conversation's file field, refusing one over the messenger's limit before reading it. */
async function sendFile(): Promise<void> {
  const contact = select('conv-contact').value;
  const field = input('file-input');
  const file = field.files?.[0];
  if (contact === '' || file === undefined) return;
  if (file.size === 0) {
    text('say-result', `${file.name} is empty: there is nothing to send.`);
    return;
  }
  if (file.size > MAX_FILE_LENGTH) {
    text('say-result', `${file.name} is ${size(file.size)}: too large. A file to a contact may be at most ${size(MAX_FILE_LENGTH)} (${MAX_FILE_LENGTH} bytes).`);
    return;
  }
  // The name is cut to what a file message carries (whole characters only).
  let name = file.name;
  const te = new TextEncoder();
  while (te.encode(name).length > MAX_FILE_NAME) name = [...name].slice(0, -1).join('');
  let data: Uint8Array;
  try {
    data = new Uint8Array(await file.arrayBuffer());
  } catch {
    text('say-result', `Cannot read ${file.name} (the browser refused it).`);
    return;
  }
  ask('say-result', `${name} queued for ${contact}.`, (requestId) => ({ type: 'send-file', requestId, contact, name, data }), undefined, [data.buffer]);
  field.value = '';
}

function wireForms(): void {
  el('send-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const to = input('send-to').value.trim();
    const body = (el('send-text') as HTMLTextAreaElement).value;
    if (to === '' || body === '') return;
    const requestId = nextRequest++;
    sends.set(requestId, body);
    text('send-result', 'Sending…');
    postToWorker({ type: 'send', requestId, to, text: body });
    (el('send-text') as HTMLTextAreaElement).value = '';
  });
  el('invite-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const name = input('invite-name').value.trim();
    if (name === '') return;
    ask('contacts-result', `Invite made: give ${name} the code shown under Invites.`, (requestId) => ({ type: 'invite', requestId, name }));
    input('invite-name').value = '';
  });
  el('accept-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const code = input('accept-code').value.trim();
    const name = input('accept-name').value.trim();
    if (code === '' || name === '') return;
    ask('contacts-result', `Code accepted: ${name} appears under Contacts once the exchange completes.`, (requestId) => ({ type: 'accept', requestId, code, name }));
    input('accept-code').value = '';
    input('accept-name').value = '';
  });
  el('introduce-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const name1 = select('intro-a').value;
    const name2 = select('intro-b').value;
    if (name1 === '' || name2 === '') return;
    if (name1 === name2) {
      text('intro-result', 'Pick two different contacts.');
      return;
    }
    ask('intro-result', `Offered ${name1} and ${name2} an introduction to each other.`, (requestId) => ({ type: 'introduce', requestId, name1, name2 }));
  });
  el('conv-contact').addEventListener('change', () => {
    showConversation();
    showContacts(view.contacts);
  });
  el('contacts-h').tabIndex = -1;
  const area = el('say-text') as HTMLTextAreaElement;
  area.addEventListener('keydown', (ev) => {
    if (ev.key === 'Enter' && !ev.shiftKey && !ev.isComposing) {
      ev.preventDefault();
      (el('say-form') as HTMLFormElement).requestSubmit();
    }
  });
  el('say-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const contact = select('conv-contact').value;
    if (contact === '' || area.value === '') return;
    ask('say-result', '', (requestId) => ({ type: 'say', requestId, contact, text: area.value }));
    area.value = '';
  });
  el('verify-open').addEventListener('click', () => {
    const panel = el('verify');
    panel.hidden = !panel.hidden;
    el('verify-open').setAttribute('aria-expanded', String(!panel.hidden));
    if (!panel.hidden) el('verify-toggle').focus();
  });
  document.addEventListener('visibilitychange', () => markShownRead());
  el('token-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const token = input('token-input').value.trim();
    if (token === '') return;
    ask('token-result', 'Token kept: it is shown to your gateway at the next attempt to connect.', (requestId) => ({ type: 'set-token', requestId, token }), () => {
      input('token-input').value = '';
    });
  });
  el('file-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    void sendFile();
  });
  el('contact-open').addEventListener('click', () => {
    const panel = el('contact-panel');
    panel.hidden = !panel.hidden;
    el('contact-open').setAttribute('aria-expanded', String(!panel.hidden));
    if (!panel.hidden) input('rename-input').focus();
  });
  el('rename-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const contact = select('conv-contact').value;
    const name = input('rename-input').value.trim();
    if (contact === '' || name === '' || name === contact) return;
    ask('contact-result', `Renamed ${contact} to ${name} (only you see the name).`, (requestId) => ({ type: 'rename', requestId, contact, name }), () => {
      // The conversation follows its contact to the new name (the worker's new state comes right
      // after this answer and shows it).
      if (!view.contacts.some((c) => c.name === name)) select('conv-contact').append(new Option(name, name));
      select('conv-contact').value = name;
      input('rename-input').value = '';
    });
  });
  el('block-toggle').addEventListener('click', () => {
    const contact = view.contacts.find((c) => c.name === select('conv-contact').value);
    if (contact === undefined) return;
    const blocked = contact.blocked !== true;
    ask('contact-result', blocked ? `Blocked ${contact.name}.` : `Unblocked ${contact.name}.`, (requestId) => ({ type: 'block', requestId, contact: contact.name, blocked }));
  });
  // Removing asks first (a modal dialog: Escape or Cancel keep the contact; Cancel has the focus).
  const dialog = el('remove-dialog') as HTMLDialogElement;
  el('remove-open').addEventListener('click', () => {
    const name = select('conv-contact').value;
    if (name === '') return;
    dialog.dataset['contact'] = name;
    text('remove-h', `Remove ${name}?`);
    text('remove-text', `Your conversation with ${name} is deleted from this browser, and the mailbox ${name} writes to is closed: they can no longer reach you. This cannot be undone; to talk again you need a new invite code.`);
    text('remove-confirm', `Remove ${name}`);
    dialog.returnValue = '';
    dialog.showModal();
  });
  dialog.addEventListener('close', () => {
    const name = dialog.dataset['contact'] ?? '';
    if (dialog.returnValue !== 'remove' || name === '') {
      el('remove-open').focus();
      return;
    }
    ask('contact-result', `Removed ${name}.`, (requestId) => ({ type: 'remove', requestId, contact: name }), () => {
      if (select('conv-contact').value === name) select('conv-contact').value = '';
      showConversation();
      el('contacts-h').focus();
    });
  });
  el('verify-toggle').addEventListener('click', () => {
    const contact = view.contacts.find((c) => c.name === select('conv-contact').value);
    if (contact === undefined) return;
    ask('verify-state', '', (requestId) => ({ type: 'verify', requestId, contact: contact.name, verified: !contact.verified }));
  });
  el('name-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const name = input('name-input').value.trim();
    if (name === '') return;
    ask('name-result', 'Saved.', (requestId) => ({ type: 'set-name', requestId, name }));
    input('name-input').value = '';
  });
}

async function main(): Promise<void> {
  // The network's connection details, tried again with growing pauses until they come (the
  // server that serves the page may be restarting): the problem shown goes once they do.
  let network: unknown;
  for (let attempt = 1; ; attempt++) {
    try {
      const res = await fetch('network.json', { cache: 'no-store' });
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      network = await res.json();
      break;
    } catch (e) {
      const pause = Math.min(NETWORK_RETRY_MAX_MS, 1000 * 2 ** (attempt - 1));
      showError('ERR_NETWORK', `Cannot load the network's connection details (${e instanceof Error ? e.message : String(e)}). Trying again in ${Math.round(pause / 1000)} s (attempt ${attempt}).`);
      await new Promise((r) => setTimeout(r, pause));
    }
  }
  clearError('ERR_NETWORK');
  wireForms();
  const params = new URLSearchParams(location.search);
  const gateway = params.get('gateway');
  const name = params.get('name');
  if (await hasProfile()) {
    startWorker(network, gateway);
  } else if (gateway !== null) {
    pendingName = name === null || name.trim() === '' ? null : name.trim();
    startWorker(network, gateway);
  } else {
    showJoin(network, null);
  }
}

void main();

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
 * A page opened as /?gateway=NAME with no profile yet joins that gateway at once (an operator's
 * link; the tests use it); /?gateway=NAME&name=N also sets the name.
 */
import type { ContactView, FromWorker, HistoryView, IntroductionView, InviteView, StatusView, ToWorker } from './protocol.js';

/** The IndexedDB database the worker keeps the profile in (web/worker.ts, PROFILE). */
const PROFILE_DB = 'backchannel-client';
/** The window over which the network panel's packet rates are taken. */
const RATE_WINDOW_MS = 10_000;

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
/** Other requests waiting for their answer: request id -> the element that shows the outcome, and what to say on success. */
const asks = new Map<number, { out: string; ok: string }>();
/** A name to set once the worker runs (chosen at the join step). */
let pendingName: string | null = null;

function postToWorker(m: ToWorker): void {
  worker?.postMessage(m);
}

/** Sends a request whose answer is a 'done'; its outcome goes to element `out`. */
function ask(out: string, ok: string, make: (requestId: number) => ToWorker): void {
  const requestId = nextRequest++;
  asks.set(requestId, { out, ok });
  text(out, 'Working…');
  postToWorker(make(requestId));
}

function showError(code: string, message: string): void {
  view.error = { code, message };
  const e = el('error');
  e.textContent = message;
  e.hidden = false;
}

/** The problem shown has passed (the worker said `resolved`). */
function clearError(): void {
  view.error = null;
  const e = el('error');
  e.textContent = '';
  e.hidden = true;
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
function fillSelect(s: HTMLSelectElement, names: readonly string[]): void {
  if ([...s.options].map((o) => o.value).join('\n') === names.join('\n')) return;
  const chosen = s.value;
  s.replaceChildren(...names.map((n) => new Option(n, n)));
  if (names.includes(chosen)) s.value = chosen;
}

const SESSION_WORDS: Record<string, string> = { starting: 'setting up', waiting: 'waiting for their first message', up: 'ready' };

function showContacts(contacts: readonly ContactView[]): void {
  const current = select('conv-contact').value;
  el('no-contacts').hidden = contacts.length > 0;
  fillList('contacts', JSON.stringify([contacts.map((c) => [c.name, c.session, c.verified]), current]), () =>
    contacts.map((c) => {
      const b = node('button', { cls: 'contact' }, node('span', { text: c.name, cls: 'who' }), node('span', { text: `${c.verified ? '✓ verified · ' : ''}${SESSION_WORDS[c.session] ?? c.session}`, cls: 'sub' }));
      b.type = 'button';
      if (c.name === current) b.setAttribute('aria-current', 'true');
      b.addEventListener('click', () => openConversation(c.name));
      return node('li', {}, b);
    }),
  );
  const names = contacts.map((c) => c.name);
  fillSelect(select('conv-contact'), names);
  fillSelect(select('intro-a'), names);
  fillSelect(select('intro-b'), names);
  if (select('intro-b').value === select('intro-a').value && names.length > 1) select('intro-b').value = names.find((n) => n !== select('intro-a').value)!;
}

function showInvites(invites: readonly InviteView[]): void {
  fillList('invites', JSON.stringify(invites), () =>
    invites.map((i) => {
      const li = node('li', { text: `${i.name}: ${i.failure ?? i.stage}` });
      if (i.code !== null) li.append(' — code ', node('code', { text: i.code, cls: 'code' }));
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

// ---- the conversation and its safety number ----

const STATE_WORDS: Record<string, string> = { queued: 'queued', sent: 'sent', delivered: 'delivered', failed: 'failed', receiving: 'arriving…', received: 'received' };

function openConversation(name: string): void {
  select('conv-contact').value = name;
  showConversation();
  showContacts(view.contacts);
  el('say-text').focus();
}

function showConversation(): void {
  const name = select('conv-contact').value;
  const rows = view.history[name] ?? [];
  const contact = view.contacts.find((c) => c.name === name);
  fillList('conversation', JSON.stringify([name, rows.map((h) => [h.id, h.state, h.text])]), () =>
    rows.map((h) => {
      const li = node('li', { cls: h.direction }, node('span', { text: h.text, cls: 'body' }));
      if (h.direction === 'out') li.append(' ', node('span', { text: `(${STATE_WORDS[h.state] ?? h.state})`, cls: `state ${h.state}` }));
      return li;
    }),
  );
  text('conv-empty', contact === undefined ? 'Pick a contact, or add one with an invite code.' : rows.length === 0 ? `No messages with ${name} yet.` : '');
  el('conv-empty').hidden = contact !== undefined && rows.length > 0;
  (el('verify-open') as HTMLButtonElement).disabled = contact === undefined;
  text('conv-badge', contact === undefined ? '' : contact.verified ? '✓ verified' : 'not verified');
  el('conv-badge').className = `badge${contact?.verified === true ? ' ok' : ''}`;
  if (contact === undefined) {
    el('verify').hidden = true;
    el('verify-open').setAttribute('aria-expanded', 'false');
    return;
  }
  text('verify-h', `Safety number with ${name}`);
  text('verify-help', `${name} sees the same 60 digits for you. Compare them in person or over a channel you trust (reading them out on a call you know is theirs). If every group matches, no one in between swapped your keys: mark ${name} as verified.`);
  const groups = contact.safetyNumber.split(' ');
  fillList('safety-number', contact.safetyNumber, () => groups.map((g) => node('span', { text: g, cls: 'group' })));
  text('verify-state', contact.verified ? `You verified ${name}'s safety number.` : `${name} is not verified.`);
  text('verify-toggle', contact.verified ? 'Clear verification' : 'Mark as verified');
}

function showMessenger(m: Extract<FromWorker, { type: 'messenger' }>): void {
  view.contacts = m.contacts;
  view.history = m.history;
  view.invites = m.invites;
  view.introductions = m.introductions ?? [];
  showContacts(m.contacts);
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
      break;
    }
    case 'messenger':
      showMessenger(m);
      break;
    case 'error':
      showError(m.code, m.message);
      break;
    case 'resolved':
      if (view.error?.code === m.code) clearError();
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
  let network: unknown;
  try {
    const res = await fetch('network.json', { cache: 'no-store' });
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    network = await res.json();
  } catch (e) {
    showError('ERR_NETWORK', `Cannot load the network's connection details (${e instanceof Error ? e.message : String(e)}).`);
    return;
  }
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

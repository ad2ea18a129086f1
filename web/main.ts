/**
 * The page: starts the worker that runs the client (web/worker.ts) with the network's connection
 * details (/network.json, served by `backchannel web`), and shows what it reports. The page
 * itself holds no keys and runs no clock that matters: a hidden tab may throttle it freely.
 */
import type { ContactView, FromWorker, HistoryView, InviteView, StatusView, ToWorker } from './protocol.js';

function el(id: string): HTMLElement {
  const e = document.getElementById(id);
  if (e === null) throw new Error(`page: no #${id}`);
  return e;
}

function text(id: string, value: string): void {
  el(id).textContent = value;
}

/** What the tests read (window.backchannel): the last state, status and error the worker reported, and when the page connected. */
const view = {
  state: 'loading',
  address: null as string | null,
  fresh: null as boolean | null,
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
};
Object.assign(globalThis, { backchannel: view });

let last: { at: number; sent: number } | null = null;
/** Sends waiting for the worker's answer: request id -> text. */
const requests = new Map<number, string>();
let nextRequest = 1;

function showStatus(s: StatusView): void {
  view.status = s;
  view.reports++;
  const sent = s.packetsSent.real + s.packetsSent.drop + s.packetsSent.loop;
  const now = performance.now();
  if (last !== null && now > last.at) text('rate', ((sent - last.sent) / ((now - last.at) / 1000)).toFixed(1));
  last = { at: now, sent };
  text('gateway', s.gateway ?? '…');
  text('epoch', s.epoch === null ? '…' : String(s.epoch));
  text('document', s.document);
  text('packets', `${s.packetsSent.real} / ${s.packetsSent.drop} / ${s.packetsSent.loop}`);
}

/** Replaces a list's items with `items` (text each), only when they changed (screen readers and focus stay calm). */
function fill(id: string, items: ReadonlyArray<{ text: string; cls?: string }>): void {
  const list = el(id);
  const now = [...list.children].map((c) => `${c.className}|${c.textContent ?? ''}`).join('\n');
  const next = items.map((i) => `${i.cls ?? ''}|${i.text}`).join('\n');
  if (now === next) return;
  list.replaceChildren(
    ...items.map((i) => {
      const li = document.createElement('li');
      li.textContent = i.text;
      if (i.cls !== undefined) li.className = i.cls;
      return li;
    }),
  );
}

function showMessenger(contacts: readonly ContactView[], history: Readonly<Record<string, readonly HistoryView[]>>, invites: readonly InviteView[]): void {
  view.contacts = contacts;
  view.history = history;
  view.invites = invites;
  fill(
    'invites',
    invites.map((i) => ({ text: `${i.name}: ${i.failure ?? i.stage}${i.code === null ? '' : ` — code ${i.code}`}` })),
  );
  fill(
    'contacts',
    contacts.map((c) => ({ text: `${c.name} — session ${c.session}${c.verified ? ', verified' : ''} — safety number ${c.safetyNumber}` })),
  );
  const select = el('conv-contact') as HTMLSelectElement;
  const names = contacts.map((c) => c.name);
  if ([...select.options].map((o) => o.value).join('\n') !== names.join('\n')) {
    const chosen = select.value;
    select.replaceChildren(...names.map((n) => new Option(n, n)));
    if (names.includes(chosen)) select.value = chosen;
  }
  showConversation();
}

function showConversation(): void {
  const name = (el('conv-contact') as HTMLSelectElement).value;
  const rows = view.history[name] ?? [];
  fill(
    'conversation',
    rows.map((h) => ({ text: h.direction === 'out' ? `${h.text} (${h.state})` : h.text, cls: h.direction })),
  );
}

/** The one place the page shows a problem (the #error alert, and view.error for the tests); null clears it. */
function showError(e: { code: string; message: string } | null): void {
  view.error = e;
  const box = el('error');
  box.textContent = e?.message ?? '';
  box.hidden = e === null;
}

function onMessage(m: FromWorker): void {
  switch (m.type) {
    case 'identity':
      view.address = m.address;
      view.fresh = m.fresh;
      text('address', m.address);
      text('gateway', m.gateway);
      break;
    case 'state':
      view.state = m.state;
      text('state', m.state);
      if (m.state === 'connected' && view.connectedAfterMs === null) view.connectedAfterMs = performance.now();
      break;
    case 'status':
      showStatus(m.status);
      break;
    case 'queued': {
      const pending = requests.get(m.requestId);
      requests.delete(m.requestId);
      if (m.id === null) {
        text('send-result', m.error ?? 'Not sent.');
        break;
      }
      text('send-result', 'Queued.');
      view.sent[m.id] = { text: pending ?? '', state: 'queued' };
      const li = document.createElement('li');
      li.id = `sent-${m.id}`;
      li.textContent = `${pending ?? ''} — queued`;
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
      const li = document.createElement('li');
      li.textContent = m.text;
      el('received').append(li);
      break;
    }
    case 'done':
      text('contacts-result', m.error ?? '');
      break;
    case 'messenger':
      showMessenger(m.contacts, m.history, m.invites);
      break;
    case 'error':
      showError({ code: m.code, message: m.message });
      break;
    case 'resolved':
      if (view.error?.code === m.code) showError(null);
      break;
  }
}

async function main(): Promise<void> {
  let network: unknown;
  try {
    const res = await fetch('network.json', { cache: 'no-store' });
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    network = await res.json();
  } catch (e) {
    onMessage({ type: 'error', code: 'ERR_NETWORK', message: `Cannot load the network's connection details (${e instanceof Error ? e.message : String(e)}).` });
    return;
  }
  const worker = new Worker(new URL('worker.js', import.meta.url), { type: 'module' });
  worker.onmessage = (ev: MessageEvent<FromWorker>) => onMessage(ev.data);
  worker.onerror = () => onMessage({ type: 'error', code: 'ERR_WORKER', message: 'The client stopped unexpectedly; reload the page.' });
  const form = el('send-form') as HTMLFormElement;
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const to = (el('send-to') as HTMLInputElement).value.trim();
    const body = (el('send-text') as HTMLTextAreaElement).value;
    if (to === '' || body === '') return;
    const requestId = nextRequest++;
    requests.set(requestId, body);
    text('send-result', 'Sending…');
    const send: ToWorker = { type: 'send', requestId, to, text: body };
    worker.postMessage(send);
    (el('send-text') as HTMLTextAreaElement).value = '';
  });
  const ask = (m: ToWorker): void => {
    text('contacts-result', 'Working…');
    worker.postMessage(m);
  };
  el('invite-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const name = (el('invite-name') as HTMLInputElement).value.trim();
    if (name !== '') ask({ type: 'invite', requestId: nextRequest++, name });
  });
  el('accept-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const code = (el('accept-code') as HTMLInputElement).value.trim();
    const name = (el('accept-name') as HTMLInputElement).value.trim();
    if (code !== '' && name !== '') ask({ type: 'accept', requestId: nextRequest++, code, name });
  });
  el('conv-contact').addEventListener('change', showConversation);
  el('say-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const contact = (el('conv-contact') as HTMLSelectElement).value;
    const area = el('say-text') as HTMLTextAreaElement;
    if (contact === '' || area.value === '') return;
    ask({ type: 'say', requestId: nextRequest++, contact, text: area.value });
    area.value = '';
  });
  const gateway = new URLSearchParams(location.search).get('gateway');
  const start: ToWorker = { type: 'start', network, gateway };
  worker.postMessage(start);
}

void main();

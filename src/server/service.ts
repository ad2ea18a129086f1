/**
 * Runs a mix node or a gateway from its config file: keys from its data directory, the document
 * follower, mix keys made ahead and deleted after their epoch, descriptor uploads, the packet node
 * itself, and the operations endpoint. `backchannel mix|gateway --config FILE` calls this.
 */
import { join } from 'node:path';
import { availableParallelism } from 'node:os';
import { Registry } from 'prom-client';
import { joinHostPort } from '../config/_validate.js';
import { loadOrCreateAdmissionTokenKey, loadOrCreateIdentity, loadOrCreateLinkKey, MixKeyStore } from '../config/keys.js';
import type { GatewayConfig, MixConfig } from '../config/types.js';
import { nodeBackend } from '../crypto/node.js';
import { wipe } from '../util/bytes.js';
import { geometryFromParameters } from '../sphinx/geometry.js';
import { Sphinx } from '../sphinx/sphinx.js';
import { openMailboxStore } from './mailbox.js';
import { openWorkerMailboxWriter } from './mailbox-writer.js';
import { createGateway } from './gateway.js';
import { createMixNode } from './mix.js';
import type { Clock } from '../ops/clock.js';
import { systemClock } from '../ops/clock.js';
import { startOpsServer } from '../ops/http.js';
import type { OpsServer } from '../ops/http.js';
import type { Logger } from '../ops/log.js';
import { nodeMetrics } from '../ops/metrics.js';
import type { DropReason } from '../ops/metrics.js';
import { watchPressure } from './pressure.js';
import { openReplayJournal } from './replay-journal.js';
import { openTokenLedger, TOKEN_LEDGER_FILE } from './token-ledger.js';
import type { Gateway } from './gateway.js';

import { uploadDescriptor } from '../pki/client.js';
import { signDescriptor } from '../pki/descriptor.js';
import { documentExpiresAt } from '../pki/document.js';
import { nodeEd25519 } from '../pki/ed25519-node.js';
import { DocumentFollower } from '../pki/follower.js';
import type { Descriptor, SignedDocument } from '../pki/types.js';
import { MAX_DESCRIPTOR_MIX_KEYS } from '../pki/types.js';
import type { DocumentSource, PacketNode } from './node.js';

/** The replay journal's folder in a node's data directory. */
const REPLAY_JOURNAL_DIR = 'replay';

/** Mix keys exist for the current epoch and this many ahead (published in descriptors). */
export const MIX_KEYS_AHEAD = 2;
/** Descriptors are uploaded this many times per epoch (and at start), so that a restarted authority soon has them. */
export const UPLOADS_PER_EPOCH = 8;

export interface RunningNode {
  readonly node: PacketNode;
  readonly ops: OpsServer;
  stop(): Promise<void>;
}

export interface NodeServiceComponents {
  readonly clock?: Clock;
  readonly log: Logger;
}

/** Starts a mix node or gateway as its config says; resolves once it listens. */
export async function runNodeServer(config: MixConfig | GatewayConfig, components: NodeServiceComponents): Promise<RunningNode> {
  const clock = components.clock ?? systemClock;
  const log = components.log.child(config.role);
  const params = config.params;
  const period = params.epochPeriodMs;
  const identity = loadOrCreateIdentity(config.dataDir);
  const link = loadOrCreateLinkKey(config.dataDir);
  const mixKeys = MixKeyStore.open(config.dataDir);
  if (identity.insecurePermissions || link.insecurePermissions || mixKeys.insecurePermissions) {
    log.warn('key files are readable by group or others; chmod 600 them');
  }
  const registry = new Registry();
  registry.setDefaultLabels({ node: config.name });
  const metrics = nodeMetrics(registry);

  const subscribers = new Set<(d: SignedDocument) => void>();
  const follower = new DocumentFollower(
    {
      authorities: config.authorities,
      threshold: config.threshold,
      onDocument: (d) => {
        log.info('new document', { epoch: d.document.epoch, nodes: d.document.nodes.length });
        for (const fn of subscribers) fn(d);
      },
      onExpired: () => log.warn('document expired and no newer one could be fetched'),
    },
    { clock, log, registry, ed: nodeEd25519 },
  );
  const documents: DocumentSource = {
    current: () => follower.current(),
    subscribe(fn) {
      subscribers.add(fn);
      return () => subscribers.delete(fn);
    },
  };

  const epochNow = (): number => Math.floor(clock.now() / period);
  const ensureKeys = (): void => {
    const e = epochNow();
    const want: number[] = [];
    for (let i = 0; i <= MIX_KEYS_AHEAD; i++) want.push(e + i);
    const made = mixKeys.ensure(want);
    // The previous epoch's key stays for packets still in flight; older ones are deleted.
    const deleted = mixKeys.deleteBefore(e - 1);
    if (made.length > 0 || deleted.length > 0) log.info('mix keys rotated', { epoch: e, made: made.length, deleted: deleted.length });
  };
  ensureKeys();

  const workers = config.limits.workers >= 0 ? config.limits.workers : availableParallelism();
  const baseInit = {
    name: config.name,
    identityKey: identity.publicKey,
    linkKey: { privateKey: link.privateKey, publicKey: link.publicKey },
    listen: config.listen,
    limits: { ...config.limits, workers },
    params,
  };
  // Replay tags on disk: a restart within an epoch still refuses that epoch's replays.
  const replayJournal = openReplayJournal(join(config.dataDir, REPLAY_JOURNAL_DIR));
  const baseComponents = {
    clock,
    log,
    metrics,
    documents,
    keys: { privateKey: (epoch: number) => mixKeys.get(epoch)?.privateKey ?? null },
    format: new Sphinx(geometryFromParameters(params), nodeBackend),
    replayJournal,
  };
  let node: PacketNode;
  let gateway: Gateway | null = null;
  let closeMailbox: (() => void) | null = null;
  let stopRole: () => Promise<void>;
  if (config.role === 'mix') {
    node = createMixNode({ ...baseInit, role: 'mix', layer: config.layer }, baseComponents);
    stopRole = () => node.stop();
  } else {
    const caps = { maxPerMailbox: config.mailbox.maxPerMailbox, maxTotal: config.mailbox.maxTotal };
    // This connection creates the store and then only reads (fetches); every write is made by
    // the writer thread's own connection, so that no commit runs on the thread answering fetches.
    const mailbox = openMailboxStore(config.mailbox.path, { ...caps, clock });
    closeMailbox = () => mailbox.close();
    // Clients get the directory through their gateway: it relays what its follower verified.
    const directory = (epoch: number): SignedDocument | null => [follower.current(), follower.next()].find((d) => d?.document.epoch === epoch) ?? null;
    const mailboxWriter = await openWorkerMailboxWriter(config.mailbox.path, { ...caps, clock }).catch((err: unknown) => {
      mailbox.close();
      mixKeys.close();
      throw err;
    });
    // Token admission: the operator's minting key and the ledger of used tokens, beside the mailbox.
    let admissionToken: { key: Uint8Array; ledger: ReturnType<typeof openTokenLedger>; crypto: typeof nodeBackend } | undefined;
    if (config.admission.mode === 'token') {
      admissionToken = { key: loadOrCreateAdmissionTokenKey(config.dataDir).key, ledger: openTokenLedger(join(config.dataDir, TOKEN_LEDGER_FILE)), crypto: nodeBackend };
      const t = admissionToken;
      const close = (): void => {
        mailbox.close();
        t.ledger.close();
        wipe(t.key);
      };
      closeMailbox = close;
    }
    const gw = createGateway(
      { ...baseInit, role: 'gateway', layer: 0, wsListen: config.wsListen, clientRate: config.clientRate, admission: config.admission, retentionMs: config.admission.retentionDays * 24 * 3_600_000, ...(config.mailbox.intake === null ? {} : { intake: { mailbox: config.mailbox.intake, alias: config.mailbox.intake, own: config.mailbox.intake } }), ...(config.mailbox.fetchRate === null ? {} : { fetchRate: config.mailbox.fetchRate }) },
      { ...baseComponents, mailbox, mailboxWriter, directory, ...(admissionToken === undefined ? {} : { admissionToken }) },
    );
    gateway = gw;
    node = gw.node;
    stopRole = () => gw.stop();
  }
  // A start that fails half way (a port taken) stops what it had started: no listener, worker or
  // timer of a server that its caller was told did not start.
  const abandon = async (e: unknown): Promise<never> => {
    await stopRole().catch(() => undefined);
    closeMailbox?.();
    replayJournal.close();
    mixKeys.close();
    wipe(identity.seed, link.privateKey);
    throw e;
  };
  await node.start().catch(abandon);
  const advertise = config.advertise ?? joinHostPort(config.listen.host, node.port);

  // Descriptor uploads: at start, then UPLOADS_PER_EPOCH times an epoch, each with fresh keys.
  let uploadTimer: unknown = null;
  let stopped = false;
  // An upload some authority missed (it may still be starting) is retried after 1 s, doubling up
  // to the normal interval, so that a network's first document soon lists every node.
  const interval = Math.max(1000, Math.floor(period / UPLOADS_PER_EPOCH));
  let retryMs = 1_000;
  let uploadFailed = false;
  const upload = async (): Promise<void> => {
    ensureKeys();
    const e = epochNow();
    const epochs: number[] = [];
    for (let i = 0; i <= MIX_KEYS_AHEAD && epochs.length < MAX_DESCRIPTOR_MIX_KEYS; i++) epochs.push(e + i);
    const desc: Descriptor = {
      name: config.name,
      identityKey: identity.publicKey,
      linkKey: link.publicKey,
      role: config.role,
      layer: config.role === 'mix' ? config.layer : 0,
      tcpAddress: advertise,
      wsAddress: config.role === 'gateway' ? config.wsAdvertise : null,
      mixKeys: mixKeys.publicKeys(epochs),
      // Every gateway runs the rendezvous service of contacts by code (src/server/rendezvous.ts).
      ...(config.role === 'gateway' ? { services: ['rendezvous'] as const } : {}),
    };
    const bytes = signDescriptor(desc, identity.seed, nodeEd25519);
    const outcomes = await uploadDescriptor(config.authorities, bytes, { timeoutMs: 5_000 });
    const ok = outcomes.filter((o) => o.ok).length;
    uploadFailed = ok < outcomes.length;
    if (ok < outcomes.length) log.warn('descriptor upload incomplete', { accepted: ok, authorities: outcomes.length, epoch: e });
    else log.debug('descriptor uploaded', { epoch: e });
  };
  const scheduleUpload = (ms: number): void => {
    if (stopped) return;
    uploadTimer = clock.setTimer(() => {
      upload()
        .catch((err: unknown) => {
          uploadFailed = true;
          log.error('descriptor upload failed', { error: err instanceof Error ? err.message : 'unknown' });
        })
        .finally(() => {
          if (!uploadFailed) retryMs = 1_000;
          scheduleUpload(uploadFailed ? retryMs : interval);
          if (uploadFailed) retryMs = Math.min(interval, retryMs * 2);
        });
    }, ms);
  };
  // Limits whose drops make the server degraded for a while (docs/network.md, "Metrics and health").
  const limitDrops: ReadonlyArray<readonly [string, DropReason]> = [
    ['packets dropped: a queue full', 'queue_full'],
    ['packets dropped: a mailbox or the store full', 'mailbox_full'],
    ['client packets over their rate limit', 'rate_limited'],
    ['client fetches over their rate limit', 'fetch_rate_limited'],
    ['mailbox intake over its limit', 'intake_limited'],
  ];
  const pressure = watchPressure(registry, () => node.listeners(), undefined, () => new Map(limitDrops.map(([what, reason]) => [what, metrics.droppedSoFar(reason)])));
  const ops = await startOpsServer({
    host: config.ops.host,
    port: config.ops.port,
    registry,
    health: () => {
      const doc = follower.current();
      const fresh = doc !== null && clock.now() < documentExpiresAt(doc.document.epoch, period);
      return { healthy: fresh, degraded: [...pressure.degraded(), ...(gateway?.degraded() ?? [])], detail: { role: config.role, epoch: doc?.document.epoch ?? null, document: fresh ? 'valid' : 'missing' } };
    },
  }).catch((err: unknown) => {
    pressure.stop();
    return abandon(err);
  });
  scheduleUpload(0);
  follower.start();
  log.info('started', { role: config.role, layer: config.role === 'mix' ? config.layer : 0, workers });

  return {
    node,
    ops,
    async stop() {
      if (stopped) return;
      stopped = true;
      if (uploadTimer !== null) clock.clearTimer(uploadTimer);
      follower.stop();
      await stopRole();
      pressure.stop();
      await ops.close();
      closeMailbox?.();
      replayJournal.close();
      mixKeys.close();
      // Nothing uses them any more: the secrets leave memory with the server.
      wipe(identity.seed, link.privateKey);
      log.info('stopped');
    },
  };
}

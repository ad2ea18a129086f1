/**
 * Loads and validates server configuration files (JSON; shapes in types.ts). Validation is
 * strict: a missing required field, a value out of range, an unknown field (a typo) or a field of
 * another role is an error whose message names the field's path and what was expected. Optional
 * fields get the defaults documented in types.ts; paths are resolved against the config file's
 * folder.
 */
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { basename, dirname, resolve } from 'node:path';
import { BackchannelError, isBackchannelError } from '../errors.js';
import type { AuthorityInfo, NetworkParameters } from '../pki/types.js';
import { equalBytes } from '../util/bytes.js';
import { ADMISSION_WORK_BITS, MAX_ADMISSION_WORK_BITS } from '../wire/admission.js';
import type {
  AuthorityConfig,
  AuthorizedNode,
  CommonConfig,
  GatewayConfig,
  ListenAddress,
  LogLevelName,
  MixConfig,
  NodeLimits,
  ServerConfig,
  ServerRole,
} from './types.js';
import {
  array,
  authorities as parseAuthorities,
  describe,
  fail,
  field,
  hostPort,
  integer,
  listenAddress,
  name as parseName,
  number,
  object,
  oneOf,
  publicKey,
  required,
  string,
  threshold as parseThreshold,
  wsUrl,
} from './_validate.js';
import type { JsonObject } from './_validate.js';
import { parseParams } from './params.js';

export { DEFAULT_PARAMS, LOCAL_NETWORK_EPOCH_MS } from './params.js';

export const SERVER_ROLES: readonly ServerRole[] = ['authority', 'mix', 'gateway'];
export const LOG_LEVELS: readonly LogLevelName[] = ['debug', 'info', 'warn', 'error'];
export const DEFAULT_LOG_LEVEL: LogLevelName = 'info';

/** types.ts, NodeLimits: a minute is far past any delay a client draws at a 50 ms mean. */
export const DEFAULT_MAX_DELAY_MS = 60_000;
/** An hour: the longest delay a config may allow (longer would outlive an epoch's keys). */
export const MAX_MAX_DELAY_MS = 3_600_000;
/** types.ts: 100 000 packets of ~3 kB is ~300 MB at most. */
export const DEFAULT_MAX_QUEUED_PACKETS = 100_000;
export const MAX_MAX_QUEUED_PACKETS = 100_000_000;
/** types.ts: 4 million 32-byte tags per mix key, an epoch of traffic at ~3 000 packets/s. */
export const DEFAULT_REPLAY_CACHE_ENTRIES = 4_000_000;
export const MAX_REPLAY_CACHE_ENTRIES = 1_000_000_000;
/** A typo guard on unwrap worker threads. */
export const MAX_WORKERS = 256;
/** types.ts: mailbox bounds. */
export const DEFAULT_MAILBOX_MAX_PER_MAILBOX = 10_000;
export const DEFAULT_MAILBOX_MAX_TOTAL = 1_000_000;
export const MAX_MAILBOX_ENTRIES = 1_000_000_000;
export const DEFAULT_MAILBOX_FILE = 'mailbox.sqlite';
/** types.ts: per-client token bucket, 50 packets/s (2.5 times the default send rate), burst 100. */
export const DEFAULT_CLIENT_RATE_PER_S = 50;
export const DEFAULT_CLIENT_BURST = 100;
export const MAX_CLIENT_RATE_PER_S = 100_000;
export const MAX_CLIENT_BURST = 1_000_000;
/** types.ts: client records a gateway holds at most (src/server/admission.ts's DEFAULT_MAX_CLIENTS, the rate limiter's bound on buckets). */
export const DEFAULT_MAX_CLIENTS = 100_000;
/** types.ts: days a gateway keeps an unseen client's record (src/server/gateway.ts, CLIENT_RETENTION_MS), and a typo guard (ten years). */
export const DEFAULT_CLIENT_RETENTION_DAYS = 30;
export const MAX_CLIENT_RETENTION_DAYS = 3650;
/** Authorized nodes one authority lists: a typo guard far above any deployment. */
export const MAX_AUTHORIZED_NODES = 10_000;
/** Config files are small; anything bigger is the wrong file. */
export const MAX_CONFIG_FILE_BYTES = 1 << 20;

const COMMON_FIELDS = ['role', 'name', 'dataDir', 'ops', 'logLevel', 'authorities', 'threshold', 'params'] as const;
const ROLE_FIELDS: Readonly<Record<ServerRole, readonly string[]>> = {
  authority: [...COMMON_FIELDS, 'listen', 'nodes'],
  mix: [...COMMON_FIELDS, 'layer', 'listen', 'advertise', 'limits'],
  gateway: [...COMMON_FIELDS, 'listen', 'advertise', 'wsListen', 'wsAdvertise', 'limits', 'mailbox', 'clientRate', 'admission'],
};

/** Every field of any role: a field outside these is reported before the role is known. */
const ALL_FIELDS = [...new Set(Object.values(ROLE_FIELDS).flat())];

/** For each role, the fields that only other roles have, with a note saying which. */
function elsewhere(role: ServerRole): Record<string, string> {
  const notes: Record<string, string> = {};
  for (const other of SERVER_ROLES) {
    if (other === role) continue;
    for (const f of ROLE_FIELDS[other]) {
      if (!ROLE_FIELDS[role].includes(f)) notes[f] = `only ${SERVER_ROLES.filter((r) => ROLE_FIELDS[r].includes(f)).join(' and ')} configs have it`;
    }
  }
  return notes;
}

/** An optional field: `parse(value)` when present, `dflt` when absent. */
function optional<T>(o: JsonObject, key: string, dflt: T, parse: (v: unknown) => T): T {
  const v = field(o, key);
  return v === undefined ? dflt : parse(v);
}

function parseCommon(role: ServerRole, o: JsonObject, baseDir: string): CommonConfig {
  const auths = parseAuthorities(`${role}.authorities`, required(o, role, 'authorities', 'an array of {name, identityKey, url}'));
  return {
    role,
    name: parseName(`${role}.name`, required(o, role, 'name', 'a name')),
    dataDir: resolve(baseDir, string(`${role}.dataDir`, required(o, role, 'dataDir', 'a folder path'))),
    ops: listenAddress(`${role}.ops`, required(o, role, 'ops', 'an object {host, port}')),
    logLevel: optional(o, 'logLevel', DEFAULT_LOG_LEVEL, (v) => oneOf(`${role}.logLevel`, v, LOG_LEVELS)),
    authorities: auths,
    threshold: parseThreshold(`${role}.threshold`, field(o, 'threshold'), auths.length),
    params: parseParams(`${role}.params`, required(o, role, 'params', 'the network parameters')),
  };
}

function parseNodes(path: string, value: unknown, params: NetworkParameters, auths: readonly AuthorityInfo[]): AuthorizedNode[] {
  const out: AuthorizedNode[] = [];
  array(path, value, 0, MAX_AUTHORIZED_NODES).forEach((entry, i) => {
    const p = `${path}[${i}]`;
    const o = object(p, entry, ['name', 'identityKey', 'role', 'layer']);
    const role = oneOf(`${p}.role`, required(o, p, 'role', '"mix" or "gateway"'), ['mix', 'gateway'] as const);
    const layerValue = field(o, 'layer');
    let layer: number;
    if (role === 'mix') {
      if (layerValue === undefined) throw new BackchannelError('ERR_CONFIG', `config: ${p}.layer is required for a mix (1 to ${params.layers})`);
      layer = integer(`${p}.layer`, layerValue, 1, params.layers);
    } else {
      layer = layerValue === undefined ? 0 : integer(`${p}.layer`, layerValue, 0, 0);
    }
    const node: AuthorizedNode = {
      name: parseName(`${p}.name`, required(o, p, 'name', 'a name')),
      identityKey: publicKey(`${p}.identityKey`, required(o, p, 'identityKey', 'an Ed25519 public key in hex')),
      role,
      layer,
    };
    for (const [j, other] of out.entries()) {
      if (other.name === node.name) throw new BackchannelError('ERR_CONFIG', `config: ${p}.name repeats the name of ${path}[${j}]`);
      if (equalBytes(other.identityKey, node.identityKey)) throw new BackchannelError('ERR_CONFIG', `config: ${p}.identityKey repeats the identityKey of ${path}[${j}]`);
    }
    if (auths.some((a) => equalBytes(a.identityKey, node.identityKey))) {
      throw new BackchannelError('ERR_CONFIG', `config: ${p}.identityKey is an authority's identity key; nodes and authorities need their own keys`);
    }
    out.push(node);
  });
  return out;
}

function parseLimits(path: string, value: unknown): NodeLimits {
  const o = object(path, value, ['maxDelayMs', 'maxQueuedPackets', 'replayCacheEntries', 'workers']);
  return {
    maxDelayMs: optional(o, 'maxDelayMs', DEFAULT_MAX_DELAY_MS, (v) => integer(`${path}.maxDelayMs`, v, 0, MAX_MAX_DELAY_MS)),
    maxQueuedPackets: optional(o, 'maxQueuedPackets', DEFAULT_MAX_QUEUED_PACKETS, (v) => integer(`${path}.maxQueuedPackets`, v, 1, MAX_MAX_QUEUED_PACKETS)),
    replayCacheEntries: optional(o, 'replayCacheEntries', DEFAULT_REPLAY_CACHE_ENTRIES, (v) => integer(`${path}.replayCacheEntries`, v, 1, MAX_REPLAY_CACHE_ENTRIES)),
    workers: optional(o, 'workers', Math.min(availableParallelism(), MAX_WORKERS), (v) => integer(`${path}.workers`, v, 0, MAX_WORKERS)),
  };
}

/** An optional object field: `{}` (every default) when absent; null is not absent. */
function orEmpty(o: JsonObject, key: string): unknown {
  const v = field(o, key);
  return v === undefined ? {} : v;
}

function nullable<T>(parse: (v: unknown) => T): (v: unknown) => T | null {
  return (v) => (v === null ? null : parse(v));
}

function parseAuthority(o: JsonObject, common: CommonConfig): AuthorityConfig {
  const role = 'authority';
  if (!common.authorities.some((a) => a.name === common.name)) {
    throw new BackchannelError('ERR_CONFIG', `config: ${role}.name must be the name of one of ${role}.authorities (this authority), got ${describe(common.name)}`);
  }
  return {
    ...common,
    role,
    listen: listenAddress(`${role}.listen`, required(o, role, 'listen', 'an object {host, port}')),
    nodes: parseNodes(`${role}.nodes`, required(o, role, 'nodes', 'an array of {name, identityKey, role, layer}'), common.params, common.authorities),
  };
}

function parseMix(o: JsonObject, common: CommonConfig): MixConfig {
  const role = 'mix';
  return {
    ...common,
    role,
    layer: integer(`${role}.layer`, required(o, role, 'layer', `1 to params.layers (${common.params.layers})`), 1, common.params.layers),
    listen: listenAddress(`${role}.listen`, required(o, role, 'listen', 'an object {host, port}')),
    advertise: optional(o, 'advertise', null, nullable((v) => hostPort(`${role}.advertise`, v))),
    limits: parseLimits(`${role}.limits`, orEmpty(o, 'limits')),
  };
}

function parseGateway(o: JsonObject, common: CommonConfig, baseDir: string): GatewayConfig {
  const role = 'gateway';
  const wsListen: ListenAddress | null = optional(o, 'wsListen', null, nullable((v) => listenAddress(`${role}.wsListen`, v)));
  const wsAdvertise = optional(o, 'wsAdvertise', null, nullable((v) => wsUrl(`${role}.wsAdvertise`, v)));
  if (wsListen === null && wsAdvertise !== null) fail(`${role}.wsAdvertise`, `null when ${role}.wsListen is null (there is no WebSocket listener to advertise)`);

  const mp = `${role}.mailbox`;
  const m = object(mp, orEmpty(o, 'mailbox'), ['path', 'maxPerMailbox', 'maxTotal', 'intake', 'fetchRate']);
  const bucket = (name: string) =>
    nullable((v) => {
      const i = object(`${mp}.${name}`, v, ['perSecond', 'burst']);
      return {
        perSecond: number(`${mp}.${name}.perSecond`, required(i, `${mp}.${name}`, 'perSecond', 'per second'), 0, MAX_CLIENT_RATE_PER_S, true),
        burst: integer(`${mp}.${name}.burst`, required(i, `${mp}.${name}`, 'burst', 'a count'), 1, MAX_CLIENT_BURST),
      };
    });
  const mailbox = {
    path: optional(m, 'path', resolve(common.dataDir, DEFAULT_MAILBOX_FILE), (v) => resolve(baseDir, string(`${mp}.path`, v))),
    maxPerMailbox: optional(m, 'maxPerMailbox', DEFAULT_MAILBOX_MAX_PER_MAILBOX, (v) => integer(`${mp}.maxPerMailbox`, v, 1, MAX_MAILBOX_ENTRIES)),
    maxTotal: optional(m, 'maxTotal', DEFAULT_MAILBOX_MAX_TOTAL, (v) => integer(`${mp}.maxTotal`, v, 1, MAX_MAILBOX_ENTRIES)),
    intake: optional(m, 'intake', null, bucket('intake')),
    fetchRate: optional(m, 'fetchRate', null, bucket('fetchRate')),
  };
  if (mailbox.maxPerMailbox > mailbox.maxTotal) fail(`${mp}.maxPerMailbox`, `at most ${mp}.maxTotal (${mailbox.maxTotal})`, String(mailbox.maxPerMailbox));

  const cp = `${role}.clientRate`;
  const c = object(cp, orEmpty(o, 'clientRate'), ['perSecond', 'burst']);
  const clientRate = {
    perSecond: optional(c, 'perSecond', DEFAULT_CLIENT_RATE_PER_S, (v) => number(`${cp}.perSecond`, v, 0, MAX_CLIENT_RATE_PER_S, true)),
    burst: optional(c, 'burst', DEFAULT_CLIENT_BURST, (v) => integer(`${cp}.burst`, v, 1, MAX_CLIENT_BURST)),
  };

  const ap = `${role}.admission`;
  const a = object(ap, orEmpty(o, 'admission'), ['mode', 'workBits', 'maxClients', 'retentionDays']);
  const admission = {
    mode: optional(a, 'mode', 'proof-of-work' as const, (v) => oneOf(`${ap}.mode`, v, ['proof-of-work', 'token', 'open'] as const)),
    workBits: optional(a, 'workBits', ADMISSION_WORK_BITS, (v) => integer(`${ap}.workBits`, v, 0, MAX_ADMISSION_WORK_BITS)),
    maxClients: optional(a, 'maxClients', DEFAULT_MAX_CLIENTS, (v) => integer(`${ap}.maxClients`, v, 1, MAX_MAILBOX_ENTRIES)),
    retentionDays: optional(a, 'retentionDays', DEFAULT_CLIENT_RETENTION_DAYS, (v) => number(`${ap}.retentionDays`, v, 0, MAX_CLIENT_RETENTION_DAYS, true)),
  };

  return {
    ...common,
    role,
    listen: listenAddress(`${role}.listen`, required(o, role, 'listen', 'an object {host, port}')),
    advertise: optional(o, 'advertise', null, nullable((v) => hostPort(`${role}.advertise`, v))),
    wsListen,
    wsAdvertise,
    limits: parseLimits(`${role}.limits`, orEmpty(o, 'limits')),
    mailbox,
    clientRate,
    admission,
  };
}

/**
 * Validates a parsed config file and fills in defaults. Paths (dataDir, mailbox.path) are
 * resolved against `baseDir`, the folder of the file.
 * @throws {BackchannelError} ERR_CONFIG naming the field and what was expected.
 * @example parseConfig(JSON.parse(text), '/etc/backchannel/mix-1-1')
 */
export function parseConfig(json: unknown, baseDir: string): ServerConfig {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) fail('config', 'an object', describe(json, false));
  const roleValue = field(json as JsonObject, 'role');
  // Without a valid role, report a misspelt field (perhaps "role" itself) before the role.
  if (!(SERVER_ROLES as readonly unknown[]).includes(roleValue)) object('config', json, ALL_FIELDS);
  const role = oneOf('config.role', required(json as JsonObject, 'config', 'role', '"authority", "mix" or "gateway"'), SERVER_ROLES);
  const o = object(role, json, ROLE_FIELDS[role], elsewhere(role));
  const common = parseCommon(role, o, baseDir);
  switch (role) {
    case 'authority':
      return parseAuthority(o, common);
    case 'mix':
      return parseMix(o, common);
    case 'gateway':
      return parseGateway(o, common, baseDir);
  }
}

/**
 * Reads a JSON document of at most `maxBytes`; errors name the file by its base name only.
 * @throws {BackchannelError} ERR_CONFIG when the file is missing, unreadable, too big or not JSON.
 */
export function readJsonFile(path: string, maxBytes = MAX_CONFIG_FILE_BYTES): unknown {
  const file = basename(path);
  let text: string;
  try {
    const bytes = readFileSync(path);
    if (bytes.length > maxBytes) throw new BackchannelError('ERR_CONFIG', `config: ${file} is larger than ${maxBytes} bytes`);
    text = bytes.toString('utf8');
  } catch (e) {
    if (isBackchannelError(e)) throw e;
    const code = (e as { code?: unknown }).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : code === 'EISDIR' ? 'it is a folder' : typeof code === 'string' ? code : 'read failed';
    throw new BackchannelError('ERR_CONFIG', `config: cannot read ${file} (${why})`, { cause: e });
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (e) {
    // Only the position: the parser's own message quotes the text, which may be anything.
    const pos = /position (\d+)/.exec(e instanceof Error ? e.message : '');
    let where = '';
    if (pos !== null) {
      const before = text.slice(0, Number(pos[1]));
      const line = before.split('\n').length;
      where = ` (line ${line}, column ${before.length - before.lastIndexOf('\n')})`;
    }
    throw new BackchannelError('ERR_CONFIG', `config: ${file} is not valid JSON${where}`);
  }
}

/**
 * Loads, validates and fills in a server config file.
 * @throws {BackchannelError} ERR_CONFIG when the file is missing, unreadable, not JSON or not a
 *   valid config; the message names the field and the file (by base name).
 * @example const config = loadConfig('backchannel-data/mix-1-1/config.json');
 */
export function loadConfig(path: string): ServerConfig {
  const json = readJsonFile(path);
  try {
    return parseConfig(json, dirname(resolve(path)));
  } catch (e) {
    if (isBackchannelError(e, 'ERR_CONFIG')) throw new BackchannelError('ERR_CONFIG', `${e.message} (in ${basename(path)})`, { cause: e });
    throw e;
  }
}

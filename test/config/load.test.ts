// Config files: every role loads with its defaults, and every kind of mistake is an ERR_CONFIG
// that names the field, echoes no key, and stops at the first problem.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { isBackchannelError } from '../../src/errors.js';
import { DEFAULT_PARAMS, LOCAL_NETWORK_EPOCH_MS, loadConfig, parseConfig } from '../../src/config/load.js';
import { parseParams } from '../../src/config/params.js';
import { parseNetworkFile } from '../../src/config/network.js';
import { toHex } from '../../src/util/bytes.js';

const KEY_A = 'a1'.repeat(32);
const KEY_B = 'b2'.repeat(32);
const KEY_C = 'c3'.repeat(32);
const KEY_M = 'd4'.repeat(32);
const KEY_G = 'e5'.repeat(32);
const BASE = '/srv/backchannel/node';

const params = { ...DEFAULT_PARAMS };
const authorities = [
  { name: 'authority-1', identityKey: KEY_A, url: 'http://127.0.0.1:7001' },
  { name: 'authority-2', identityKey: KEY_B, url: 'http://127.0.0.1:7002' },
  { name: 'authority-3', identityKey: KEY_C, url: 'https://dir.example.org/api/' },
];
const common = { name: 'n1', dataDir: 'data', ops: { host: '127.0.0.1', port: 9000 }, authorities, params };

type Json = Record<string, unknown>;
const authorityJson = (): Json => ({
  ...common,
  role: 'authority',
  name: 'authority-1',
  listen: { host: '0.0.0.0', port: 7001 },
  nodes: [
    { name: 'mix-1', identityKey: KEY_M, role: 'mix', layer: 1 },
    { name: 'gateway-1', identityKey: KEY_G, role: 'gateway' },
  ],
});
const mixJson = (): Json => ({ ...common, role: 'mix', layer: 2, listen: { host: '::', port: 0 } });
const gatewayJson = (): Json => ({ ...common, role: 'gateway', listen: { host: 'localhost', port: 7100 } });

/** Deep copy with `value` set at `path` (undefined deletes the field). */
function withField(json: Json, path: (string | number)[], value: unknown): Json {
  const copy = structuredClone(json) as Json;
  let o = copy as Record<string | number, unknown>;
  for (const k of path.slice(0, -1)) o = o[k] as Record<string | number, unknown>;
  const last = path[path.length - 1]!;
  if (value === undefined) delete o[last];
  else o[last] = value;
  return copy;
}

function configError(json: unknown, pattern: RegExp | string): string {
  let message = '';
  assert.throws(
    () => parseConfig(json, BASE),
    (e: unknown) => {
      assert.ok(isBackchannelError(e, 'ERR_CONFIG'), `expected ERR_CONFIG, got ${String(e)}`);
      message = e.message;
      return true;
    },
  );
  if (typeof pattern === 'string') assert.equal(message, pattern);
  else assert.match(message, pattern);
  return message;
}

describe('parseConfig: valid configs', () => {
  test('an authority config loads, with a majority threshold and paths resolved against the base folder', () => {
    const c = parseConfig(authorityJson(), BASE);
    assert.equal(c.role, 'authority');
    if (c.role !== 'authority') return;
    assert.equal(c.threshold, 2);
    assert.equal(c.logLevel, 'info');
    assert.equal(c.dataDir, '/srv/backchannel/node/data');
    assert.deepEqual(c.params, DEFAULT_PARAMS);
    assert.deepEqual(c.listen, { host: '0.0.0.0', port: 7001 });
    assert.equal(toHex(c.authorities[0]!.identityKey), KEY_A);
    assert.ok(c.authorities[0]!.identityKey instanceof Uint8Array);
    assert.equal(c.authorities[2]!.url, 'https://dir.example.org/api', 'stored without a trailing slash');
    assert.deepEqual(
      c.nodes.map((n) => [n.name, toHex(n.identityKey), n.role, n.layer]),
      [
        ['mix-1', KEY_M, 'mix', 1],
        ['gateway-1', KEY_G, 'gateway', 0],
      ],
    );
  });

  test('a mix config loads with default limits and no advertised address', () => {
    const c = parseConfig(mixJson(), BASE);
    assert.equal(c.role, 'mix');
    if (c.role !== 'mix') return;
    assert.equal(c.layer, 2);
    assert.equal(c.advertise, null);
    assert.deepEqual(c.limits, { maxDelayMs: 60_000, maxQueuedPackets: 100_000, replayCacheEntries: 4_000_000, workers: availableParallelism() });
  });

  test('a gateway config loads with its mailbox in the data folder and the default client rate', () => {
    const c = parseConfig(gatewayJson(), BASE);
    assert.equal(c.role, 'gateway');
    if (c.role !== 'gateway') return;
    assert.equal(c.wsListen, null);
    assert.equal(c.wsAdvertise, null);
    assert.deepEqual(c.mailbox, { path: '/srv/backchannel/node/data/mailbox.sqlite', maxPerMailbox: 10_000, maxTotal: 1_000_000, intake: null, fetchRate: null });
    assert.deepEqual(c.clientRate, { perSecond: 50, burst: 100 });
  });

  test('every optional field is taken when given', () => {
    const c = parseConfig(
      {
        ...gatewayJson(),
        logLevel: 'debug',
        threshold: 3,
        advertise: '[2001:db8::1]:7100',
        wsListen: { host: '0.0.0.0', port: 7101 },
        wsAdvertise: 'wss://gw.example.org/link',
        limits: { maxDelayMs: 0, maxQueuedPackets: 5, replayCacheEntries: 7, workers: 0 },
        mailbox: { path: '/var/lib/mailbox.db', maxPerMailbox: 3, maxTotal: 4 },
        clientRate: { perSecond: 0.5, burst: 1 },
      },
      BASE,
    );
    assert.equal(c.role, 'gateway');
    if (c.role !== 'gateway') return;
    assert.equal(c.logLevel, 'debug');
    assert.equal(c.threshold, 3);
    assert.equal(c.advertise, '[2001:db8::1]:7100');
    assert.deepEqual(c.wsListen, { host: '0.0.0.0', port: 7101 });
    assert.equal(c.wsAdvertise, 'wss://gw.example.org/link');
    assert.deepEqual(c.limits, { maxDelayMs: 0, maxQueuedPackets: 5, replayCacheEntries: 7, workers: 0 });
    assert.deepEqual(c.mailbox, { path: '/var/lib/mailbox.db', maxPerMailbox: 3, maxTotal: 4, intake: null, fetchRate: null });
    assert.deepEqual(c.clientRate, { perSecond: 0.5, burst: 1 });
  });

  test('a relative mailbox path is resolved against the config folder, not the data folder', () => {
    const c = parseConfig({ ...gatewayJson(), mailbox: { path: 'mb/box.sqlite' } }, BASE);
    assert.ok(c.role === 'gateway' && c.mailbox.path === '/srv/backchannel/node/mb/box.sqlite');
  });

  test('the defaults are the ones DESIGN.md names (and the fetch rate params.ts argues for)', () => {
    assert.deepEqual(
      { ...DEFAULT_PARAMS },
      { epochPeriodMs: 1_200_000, hops: 5, userPayloadLength: 2000, withSurb: true, layers: 3, mixMeanDelayMs: 50, sendRatePerS: 20, loopRatePerS: 5, fetchRatePerS: 30, gatewayRatePerClientPerS: 25 },
    );
    assert.equal(LOCAL_NETWORK_EPOCH_MS, 60_000);
    assert.deepEqual(parseParams('params', { ...DEFAULT_PARAMS }), DEFAULT_PARAMS);
    assert.ok(Object.isFrozen(DEFAULT_PARAMS));
  });
});

describe('parseConfig: each mistake names its field', () => {
  test('a value of the wrong type says what was expected and what came', () => {
    configError(withField(mixJson(), ['limits'], { maxDelayMs: 'x' }), 'config: mix.limits.maxDelayMs must be an integer in [0, 3600000], got "x"');
    configError(withField(mixJson(), ['ops', 'port'], 70000), 'config: mix.ops.port must be an integer in [0, 65535], got 70000');
    configError(withField(gatewayJson(), ['clientRate'], { perSecond: 0 }), 'config: gateway.clientRate.perSecond must be a number in (0, 100000], got 0');
    configError(withField(mixJson(), ['logLevel'], 'verbose'), 'config: mix.logLevel must be one of "debug", "info", "warn", "error", got "verbose"');
    configError(withField(mixJson(), ['name'], 'has space'), /^config: mix\.name must be a name of 1 to 64 characters/);
    configError(withField(mixJson(), ['limits'], null), 'config: mix.limits must be an object, got null');
  });

  test('a missing required field is named', () => {
    configError(withField(mixJson(), ['listen'], undefined), /^config: mix\.listen is required/);
    configError(withField(authorityJson(), ['nodes'], undefined), /^config: authority\.nodes is required/);
    configError(withField(mixJson(), ['params', 'hops'], undefined), /^config: mix\.params\.hops is required/);
    configError(withField(mixJson(), ['role'], undefined), /^config: config\.role is required/);
  });

  test('an unknown field is an error, with a suggestion for a typo', () => {
    configError({ ...mixJson(), lisen: { host: '::', port: 1 } }, 'config: mix has an unknown field "lisen" (did you mean "listen"?)');
    configError(withField(mixJson(), ['limits'], { maxDelay: 5 }), 'config: mix.limits has an unknown field "maxDelay" (did you mean "maxDelayMs"?)');
    configError(withField(mixJson(), ['params', 'colour'], 1), 'config: mix.params has an unknown field "colour"');
    configError({ ...mixJson(), __proto__x: 1 }, /unknown field "__proto__x"/);
    configError(JSON.parse('{"role":"mix","__proto__":{"a":1}}'), /unknown field "__proto__"/);
  });

  test("a field of another role is rejected and the message says whose it is", () => {
    configError({ ...mixJson(), wsListen: null }, 'config: mix.wsListen is not a field here (only gateway configs have it)');
    configError({ ...gatewayJson(), nodes: [] }, 'config: gateway.nodes is not a field here (only authority configs have it)');
    configError({ ...authorityJson(), limits: {} }, 'config: authority.limits is not a field here (only mix and gateway configs have it)');
    configError({ ...gatewayJson(), layer: 1 }, 'config: gateway.layer is not a field here (only mix configs have it)');
  });

  test('a bad role or a document that is not an object', () => {
    configError({ ...mixJson(), role: 'relay' }, 'config: config.role must be one of "authority", "mix", "gateway", got "relay"');
    configError([], 'config: config must be an object, got an array');
    configError('mix', 'config: config must be an object, got a string of 3 characters');
    configError(null, 'config: config must be an object, got null');
  });

  test('bad hex keys are rejected without echoing them', () => {
    const bad = 'zz' + KEY_A.slice(2);
    const m1 = configError(withField(mixJson(), ['authorities', 1, 'identityKey'], bad), /^config: mix\.authorities\[1\]\.identityKey must be 64 hex digits \(a 32-byte public key\), got a character that is not a hex digit$/);
    assert.ok(!m1.includes(bad));
    const short = KEY_A.slice(0, 62);
    const m2 = configError(withField(authorityJson(), ['nodes', 0, 'identityKey'], short), 'config: authority.nodes[0].identityKey must be 64 hex digits (a 32-byte public key), got 62 characters');
    assert.ok(!m2.includes(short));
    configError(withField(mixJson(), ['authorities', 0, 'identityKey'], 5), /identityKey must be 64 hex digits .*, got 5$/);
  });

  test('addresses and URLs are checked and not echoed', () => {
    const m = configError(withField(mixJson(), ['authorities', 0, 'url'], 'http://user:secret@10.1.2.3:7001'), /^config: mix\.authorities\[0\]\.url must be an http:\/\/ or https:\/\/ URL, with no user name/);
    assert.ok(!m.includes('secret') && !m.includes('10.1.2.3'));
    configError(withField(mixJson(), ['authorities', 0, 'url'], 'ftp://10.1.2.3/'), 'config: mix.authorities[0].url must be an http:// or https:// URL, got another scheme');
    configError(withField(mixJson(), ['authorities', 0, 'url'], 'not a url'), 'config: mix.authorities[0].url must be an http:// or https:// URL, got a string that is not a URL');
    const a = configError({ ...mixJson(), advertise: '10.9.8.7' }, /^config: mix\.advertise must be "host:port"/);
    assert.ok(!a.includes('10.9.8.7'));
    configError({ ...mixJson(), advertise: 'host:0' }, /^config: mix\.advertise must be "host:port"/);
    configError({ ...mixJson(), advertise: '::1:80' }, /^config: mix\.advertise must be "host:port"/);
    configError(withField(mixJson(), ['listen', 'host'], 'bad host!'), /^config: mix\.listen\.host must be an IP address or a host name, got a string of 9 characters$/);
    configError({ ...gatewayJson(), wsListen: { host: '::', port: 1 }, wsAdvertise: 'http://x/link' }, 'config: gateway.wsAdvertise must be a ws:// or wss:// URL, got another scheme');
    configError({ ...gatewayJson(), wsAdvertise: 'ws://x/link' }, /^config: gateway\.wsAdvertise must be null when gateway\.wsListen is null/);
  });

  test('authorities must be unique by name, key and URL', () => {
    const dupName = withField(mixJson(), ['authorities', 2, 'name'], 'authority-1');
    configError(dupName, 'config: mix.authorities[2].name repeats the name of mix.authorities[0]');
    configError(withField(mixJson(), ['authorities', 2, 'identityKey'], KEY_B), 'config: mix.authorities[2].identityKey repeats the identityKey of mix.authorities[1]');
    configError(withField(mixJson(), ['authorities', 1, 'url'], 'http://127.0.0.1:7001/'), 'config: mix.authorities[1].url repeats the url of mix.authorities[0]');
    configError(withField(mixJson(), ['authorities'], []), 'config: mix.authorities must be an array of 1 to 64 entries, got an array');
  });

  test('authorized nodes must be unique, in a real layer, and not authorities', () => {
    const j = authorityJson();
    configError(withField(j, ['nodes', 1, 'identityKey'], KEY_M), 'config: authority.nodes[1].identityKey repeats the identityKey of authority.nodes[0]');
    configError(withField(j, ['nodes', 1, 'name'], 'mix-1'), 'config: authority.nodes[1].name repeats the name of authority.nodes[0]');
    configError(withField(j, ['nodes', 0, 'identityKey'], KEY_B), /^config: authority\.nodes\[0\]\.identityKey is an authority's identity key/);
    configError(withField(j, ['nodes', 0, 'layer'], 4), 'config: authority.nodes[0].layer must be an integer in [1, 3], got 4');
    configError(withField(j, ['nodes', 0, 'layer'], undefined), 'config: authority.nodes[0].layer is required for a mix (1 to 3)');
    configError(withField(j, ['nodes', 1, 'layer'], 1), 'config: authority.nodes[1].layer must be an integer in [0, 0], got 1');
    configError(withField(j, ['nodes', 1, 'role'], 'authority'), 'config: authority.nodes[1].role must be one of "mix", "gateway", got "authority"');
  });

  test("an authority's own name must be among the authorities", () => {
    configError({ ...authorityJson(), name: 'authority-9' }, 'config: authority.name must be the name of one of authority.authorities (this authority), got "authority-9"');
  });

  test('the threshold is at least a majority and at most every authority', () => {
    configError({ ...mixJson(), threshold: 1 }, 'config: mix.threshold must be an integer in [2, 3] (at least a majority of the 3 authorities), got 1');
    configError({ ...mixJson(), threshold: 4 }, /^config: mix\.threshold must be an integer in \[2, 3\]/);
  });

  test('network parameters are checked field by field and together', () => {
    configError(withField(mixJson(), ['params', 'epochPeriodMs'], 999), 'config: mix.params.epochPeriodMs must be an integer in [1000, 604800000], got 999');
    configError(withField(mixJson(), ['params', 'hops'], 17), 'config: mix.params.hops must be an integer in [1, 16], got 17');
    configError(withField(mixJson(), ['params', 'userPayloadLength'], 65537), 'config: mix.params.userPayloadLength must be an integer in [0, 65536], got 65537');
    configError(withField(mixJson(), ['params', 'layers'], 0), 'config: mix.params.layers must be an integer in [1, 16], got 0');
    configError(withField(mixJson(), ['params', 'withSurb'], 'yes'), 'config: mix.params.withSurb must be true or false, got "yes"');
    configError(withField(mixJson(), ['params', 'sendRatePerS'], 0), 'config: mix.params.sendRatePerS must be a number in (0, 1000], got 0');
    configError(withField(mixJson(), ['params', 'loopRatePerS'], -1), /^config: mix\.params\.loopRatePerS must be a number in \(0, 1000\]/);
    configError(withField(mixJson(), ['params', 'fetchRatePerS'], Number.NaN), /^config: mix\.params\.fetchRatePerS must be a number/);
    configError(withField(mixJson(), ['params', 'hops'], 4), 'config: mix.params.hops must be at least layers + 2 = 5 (gateway, one mix per layer, gateway), got 4');
  });

  test("a mix's layer is within the network's layers", () => {
    configError({ ...mixJson(), layer: 4 }, 'config: mix.layer must be an integer in [1, 3], got 4');
    configError({ ...mixJson(), layer: 0 }, 'config: mix.layer must be an integer in [1, 3], got 0');
  });

  test('mailbox bounds are consistent', () => {
    configError({ ...gatewayJson(), mailbox: { maxPerMailbox: 10, maxTotal: 5 } }, 'config: gateway.mailbox.maxPerMailbox must be at most gateway.mailbox.maxTotal (5), got 10');
  });
});

describe('parseConfig: properties', () => {
  const isConfigError = (e: unknown): boolean => isBackchannelError(e, 'ERR_CONFIG');

  test('any JSON value either parses or throws ERR_CONFIG', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (v) => {
        try {
          parseConfig(v, BASE);
        } catch (e) {
          if (!isConfigError(e)) throw e;
        }
      }),
      { numRuns: 500 },
    );
  });

  // Paths into a valid config; the property replaces one of them with an arbitrary JSON value.
  const leafPaths = (json: unknown, prefix: (string | number)[] = []): (string | number)[][] => {
    if (typeof json !== 'object' || json === null) return [prefix];
    const entries = Array.isArray(json) ? json.map((v, i) => [i, v] as const) : Object.entries(json);
    return [prefix, ...entries.flatMap(([k, v]) => leafPaths(v, [...prefix, k]))];
  };
  const configs = [authorityJson(), mixJson(), gatewayJson()];
  const targets = configs.flatMap((c) => leafPaths(c).filter((p) => p.length > 0).map((p) => [c, p] as const));

  test('a valid config with one field replaced by any JSON value parses or throws ERR_CONFIG, never echoing a key', () => {
    fc.assert(
      fc.property(fc.constantFrom(...targets), fc.oneof(fc.jsonValue(), fc.constant(undefined), fc.stringMatching(/^[0-9a-f]{60,70}$/)), ([config, path], value) => {
        try {
          parseConfig(withField(config, path, value), BASE);
        } catch (e) {
          if (!isConfigError(e)) throw e;
          const message = (e as Error).message;
          for (const key of [KEY_A, KEY_B, KEY_C, KEY_M, KEY_G]) assert.ok(!message.includes(key));
          if (typeof value === 'string' && value.length > 24) assert.ok(!message.includes(value), message);
        }
      }),
      { numRuns: 2000 },
    );
  });
});

describe('loadConfig', () => {
  const withTemp = (fn: (dir: string) => void): void => {
    const dir = mkdtempSync(join(tmpdir(), 'bc-config-'));
    try {
      fn(dir);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };

  test('reads a file and resolves its paths against its folder', () => {
    withTemp((dir) => {
      const path = join(dir, 'config.json');
      writeFileSync(path, JSON.stringify(gatewayJson()));
      const c = loadConfig(path);
      assert.equal(c.dataDir, join(dir, 'data'));
      assert.ok(c.role === 'gateway' && c.mailbox.path === join(dir, 'data', 'mailbox.sqlite'));
    });
  });

  test('a missing file, bad JSON or an invalid config is ERR_CONFIG naming the file by its base name', () => {
    withTemp((dir) => {
      const missing = join(dir, 'nope.json');
      assert.throws(() => loadConfig(missing), (e: unknown) => isBackchannelError(e, 'ERR_CONFIG') && e.message === 'config: cannot read nope.json (no such file)');
      const bad = join(dir, 'bad.json');
      writeFileSync(bad, '{\n  "role": "mix",\n  "secret": 0123abcd\n}');
      assert.throws(
        () => loadConfig(bad),
        (e: unknown) => isBackchannelError(e, 'ERR_CONFIG') && /^config: bad\.json is not valid JSON/.test(e.message) && !e.message.includes('abcd') && !e.message.includes(dir),
      );
      const invalid = join(dir, 'config.json');
      writeFileSync(invalid, JSON.stringify({ ...mixJson(), layer: 9 }));
      assert.throws(() => loadConfig(invalid), (e: unknown) => isBackchannelError(e, 'ERR_CONFIG') && e.message === 'config: mix.layer must be an integer in [1, 3], got 9 (in config.json)');
      assert.throws(() => loadConfig(dir), (e: unknown) => isBackchannelError(e, 'ERR_CONFIG') && !e.message.includes(dir));
    });
  });
});

describe('parseNetworkFile', () => {
  const network = (): Json => ({
    authorities,
    threshold: 2,
    params,
    gateways: [{ name: 'gateway-1', identityKey: KEY_G, linkKey: KEY_M, tcpAddress: '127.0.0.1:7100', wsAddress: 'ws://127.0.0.1:7101/link' }],
  });

  test('a valid network file parses, keys as bytes', () => {
    const n = parseNetworkFile(network());
    assert.equal(n.threshold, 2);
    assert.equal(toHex(n.gateways[0]!.linkKey), KEY_M);
    assert.equal(n.gateways[0]!.wsAddress, 'ws://127.0.0.1:7101/link');
  });

  test('mistakes name their field', () => {
    assert.throws(() => parseNetworkFile(withField(network(), ['gateways'], [])), /config: network\.gateways must be an array of 1 to 1024 entries/);
    assert.throws(() => parseNetworkFile(withField(network(), ['gateways', 0, 'tcpAddress'], 'nope')), /config: network\.gateways\[0\]\.tcpAddress must be "host:port"/);
    assert.throws(() => parseNetworkFile({ ...network(), extra: 1 }), /config: network has an unknown field "extra"/);
    const two = withField(network(), ['gateways', 1], { name: 'gateway-2', identityKey: KEY_G, linkKey: KEY_A, tcpAddress: 'h:1', wsAddress: null });
    assert.throws(() => parseNetworkFile(two), /config: network\.gateways\[1\]\.identityKey repeats the identityKey of network\.gateways\[0\]/);
  });
});

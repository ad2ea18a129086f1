// The sphinx oracle CLI, run as a real process: every vector hop through `backchannel sphinx`.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { loadVectors } from '../vectors.js';
import type { SphinxCase } from '../sphinx/vectors.test.js';

const BIN = fileURLToPath(new URL('../../../bin/backchannel.js', import.meta.url));
const run = promisify(execFile);

async function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [BIN, ...args]);
    return { code: 0, stdout, stderr };
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string };
    return { code: err.code, stdout: err.stdout, stderr: err.stderr };
  }
}

const cases = loadVectors<SphinxCase[]>('katzenpost/sphinx_vectors.json');
const geo = ['--hops', '5', '--forward-payload', '103'];

describe('backchannel sphinx', () => {
  test('unwrap and decrypt-surb-payload reproduce every vector hop', { skip: 'skip' in cases ? cases.skip : false }, async () => {
    if (!('data' in cases)) return;
    let hops = 0;
    for (const c of cases.data) {
      for (let i = 0; i < c.Nodes.length; i++) {
        const r = await cli(['sphinx', 'unwrap', ...geo, '--private-key', c.Nodes[i]!.PrivateKey, '--packet', c.Packets[i]!]);
        assert.equal(r.code, 0, r.stderr);
        const lines = r.stdout.trimEnd().split('\n');
        assert.equal(lines.length, 1);
        const out = JSON.parse(lines[0]!) as { kind: string; packet?: string; payload?: string };
        hops++;
        if (i < c.Nodes.length - 1) {
          assert.equal(out.kind, 'forward');
          assert.equal(out.packet, c.Packets[i + 1]);
        } else if ((c.SurbKeys ?? '') === '') {
          assert.equal(out.kind, 'final');
          assert.equal(out.payload, c.Payload);
        } else {
          assert.equal(out.kind, 'final');
          const d = await cli(['sphinx', 'decrypt-surb-payload', ...geo, '--surb-keys', c.SurbKeys!, '--payload', out.payload!]);
          assert.equal(d.code, 0, d.stderr);
          assert.deepEqual(JSON.parse(d.stdout), { payload: c.Payload });
        }
      }
    }
    assert.equal(hops, 30);
  });

  test('a bad packet exits non-zero with one line and no stack trace', { skip: 'skip' in cases ? cases.skip : false }, async () => {
    if (!('data' in cases)) return;
    const c = cases.data[1]!;
    const flipped = (c.Packets[0]!.slice(0, 100) + (c.Packets[0]![100] === '0' ? '1' : '0') + c.Packets[0]!.slice(101));
    const r = await cli(['sphinx', 'unwrap', ...geo, '--private-key', c.Nodes[0]!.PrivateKey, '--packet', flipped]);
    assert.equal(r.code, 1);
    assert.equal(r.stdout, '');
    assert.equal(r.stderr, 'backchannel: sphinx: invalid packet, MAC mismatch\n');
    const short = await cli(['sphinx', 'unwrap', ...geo, '--private-key', c.Nodes[0]!.PrivateKey, '--packet', 'abcd']);
    assert.equal(short.code, 1);
    assert.match(short.stderr, /^backchannel: sphinx: invalid packet, expected 611 bytes, got 2\n$/);
  });

  test('usage errors name the option and never echo a key', async () => {
    const secret = 'zz'.repeat(32);
    const r = await cli(['sphinx', 'unwrap', ...geo, '--private-key', secret, '--packet', '00']);
    assert.equal(r.code, 2);
    assert.equal(r.stderr, 'backchannel: --private-key must be hex (an even number of 0-9a-f digits)\n');
    const missing = await cli(['sphinx', 'unwrap', '--hops', '5']);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /--forward-payload is required/);
    const unknown = await cli(['sphinx', 'unwrap', '--bogus']);
    assert.equal(unknown.code, 2);
    assert.equal(unknown.stderr.split('\n').length, 2);
  });

  test('--help explains the commands', async () => {
    const top = await cli(['--help']);
    assert.equal(top.code, 0);
    assert.match(top.stdout, /sphinx/);
    const sub = await cli(['sphinx', '--help']);
    assert.match(sub.stdout, /decrypt-surb-payload/);
    const geometry = await cli(['sphinx', 'geometry', '--hops', '5', '--user-payload', '2000', '--with-surb']);
    assert.equal(JSON.parse(geometry.stdout).packetLength, 3082);
  });
});

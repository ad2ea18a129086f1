// `backchannel client introduce|introductions|introduction` as real processes: help, usage
// errors before any socket is tried, one-line errors for a client that is not set up; and a
// reader that closes the pipe early (`| head`) ends a command quietly.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BIN, cli } from '../helpers/cli.js';

function oneLine(r: { code: number; stderr: string }, code: number, pattern: RegExp): void {
  assert.equal(r.code, code, r.stderr);
  assert.match(r.stderr, pattern);
  assert.equal(r.stderr.trimEnd().split('\n').length, 1, r.stderr);
}

describe('client introduce / introductions / introduction', () => {
  it('prints help for each, and the client help lists them', async () => {
    const top = await cli(['client', '--help']);
    for (const sub of ['introduce', 'introductions', 'introduction']) assert.match(top.stdout, new RegExp(`\\n  ${sub} `));
    for (const [args, usage] of [
      [['introduce', '--help'], /Usage: backchannel client introduce NAME1 NAME2/],
      [['introductions', '--help'], /Usage: backchannel client introductions/],
      [['introduction', '--help'], /Usage: backchannel client introduction accept ID \[--name NAME\]/],
      [['introduction'], /decline ID/],
    ] as const) {
      const r = await cli(['client', ...args]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, usage);
      assert.match(r.stdout, /--dir DIR/);
    }
    assert.match((await cli(['client', 'introduce', '--help'])).stdout, /safety numbers/);
  });

  it('refuses bad usage with exit code 2 and one line', async () => {
    oneLine(await cli(['client', 'introduce', 'bob']), 2, /usage: backchannel client introduce NAME1 NAME2/);
    oneLine(await cli(['client', 'introduction', 'accept']), 2, /usage: backchannel client introduction accept ID/);
    oneLine(await cli(['client', 'introduction', 'accept', 'x1']), 2, /ID as 'client introductions' shows it/);
    oneLine(await cli(['client', 'introduction', 'accept', '0']), 2, /usage/);
    oneLine(await cli(['client', 'introduction', 'decline', '1', '--name', 'x']), 2, /--name is for accept/);
    oneLine(await cli(['client', 'introduction', 'frob', '1']), 2, /the commands are accept and decline/);
    oneLine(await cli(['client', 'introductions', 'extra']), 2, /takes no arguments/);
  });

  it('says the client is not set up, in one line, for a folder without one', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'bc-intro-cli-'));
    try {
      const r = await cli(['client', 'introductions', '--dir', join(dir, 'nobody')]);
      assert.equal(r.code, 1);
      assert.equal(r.stderr.trimEnd().split('\n').length, 1, r.stderr);
      assert.doesNotMatch(r.stderr, /\n\s+at /);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a reader that closes the pipe early ends the command quietly (no EPIPE trace)', async () => {
    const child = spawn(process.execPath, [BIN, 'client', 'introduce', '--help'], { stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.destroy();
    let stderr = '';
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    const code = await new Promise<number | null>((r) => child.on('exit', r));
    assert.equal(stderr, '');
    assert.equal(code, 0);
  });
});

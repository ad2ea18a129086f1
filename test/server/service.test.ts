/**
 * runNodeServer, the whole of a node started from its config in this process: a start that fails
 * half way (here its operations port is taken) rejects with the one-line listen error and leaves
 * nothing of itself running, so that its link port is free again at once.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import type { Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { generateNetwork } from '../../src/config/genconfig.js';
import { loadConfig } from '../../src/config/load.js';
import type { GatewayConfig } from '../../src/config/types.js';
import { findFreePortRange, portFree } from '../../src/local/network.js';
import { silentLogger } from '../../src/ops/log.js';
import { runNodeServer } from '../../src/server/service.js';

describe('a node server whose start fails half way', () => {
  let dir: string;
  let blocker: Server;
  let gateway: GatewayConfig;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'bc-service-'));
    const basePort = await findFreePortRange(30, 32_600);
    generateNetwork({ dir, authorities: 1, layers: 1, mixesPerLayer: 1, gateways: 1, basePort });
    const c = loadConfig(join(dir, 'gateway-1', 'config.json'));
    assert.equal(c.role, 'gateway');
    gateway = c as GatewayConfig;
    blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(gateway.ops.port, gateway.ops.host, resolve));
  });

  after(async () => {
    await new Promise((r) => blocker?.close(r));
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('rejects with ERR_SERVER_LISTEN and closes the listeners it had opened', async () => {
    await assert.rejects(runNodeServer(gateway, { log: silentLogger }), { code: 'ERR_SERVER_LISTEN' });
    assert.ok(await portFree(gateway.listen.port, gateway.listen.host), 'the link port is free again');
    if (gateway.wsListen) assert.ok(await portFree(gateway.wsListen.port, gateway.wsListen.host), 'the WebSocket port is free again');
  });
});

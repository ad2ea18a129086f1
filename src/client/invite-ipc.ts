/**
 * The daemon's invite ops (contacts by code), served by daemon.ts on its local socket:
 *
 *   {"op":"invite","name"?:NAME,"expires_min"?:N}
 *   {"op":"accept","code":CODE,"name":NAME,"expires_min"?:N}
 *       -> {"ok":true,"id":ID}, then events as the invite goes:
 *          {"event":"code","code":CODE,"expires_at":MS}        (invite only: the code to read out)
 *          {"event":"progress","stage":STAGE}*
 *          then {"event":"done","name":NAME} or {"event":"failed","code":"ERR_...","error":TEXT}
 *       then close. A peer that closes early (Ctrl-C) leaves the invite open in the daemon.
 *   {"op":"invites"}            -> {"ok":true,"invites":[{id,role,name,stage,code,expires_at,failure}]}
 *   {"op":"invite_cancel","id":ID} -> {"ok":true}                    (the code is burned)
 *
 * Portable: plain objects in and out; daemon.ts does the socket.
 */
import { BackchannelError } from '../errors.js';
import type { InviteEvent } from '../messaging/invite.js';
import type { InviteManager, InviteSummary } from './invites.js';
import type { IpcMessage } from './ipc.js';

/** The longest name a contact may get here (the messenger may allow less). */
export const MAX_CONTACT_NAME_LENGTH = 64;

export const INVITE_OPS: readonly string[] = ['invite', 'accept', 'invites', 'invite_cancel'];

function ipcError(message: string): BackchannelError {
  return new BackchannelError('ERR_CLIENT_IPC', `client ipc: ${message}`);
}

function only(request: IpcMessage, allowed: readonly string[]): void {
  for (const key of Object.keys(request)) if (!allowed.includes(key)) throw ipcError(`unknown field "${key.slice(0, 32)}" for op "${String(request['op'])}"`);
}

function optionalName(request: IpcMessage): string | undefined {
  const v = request['name'];
  if (v === undefined) return undefined;
  if (typeof v !== 'string' || v.trim() === '' || v.length > MAX_CONTACT_NAME_LENGTH || [...v].some((ch) => ch.charCodeAt(0) < 0x20 || ch.charCodeAt(0) === 0x7f)) {
    throw ipcError(`"name" must be 1 to ${MAX_CONTACT_NAME_LENGTH} printable characters`);
  }
  return v.trim();
}

function lifetime(request: IpcMessage): number | undefined {
  const v = request['expires_min'];
  if (v === undefined) return undefined;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > 24 * 60) throw ipcError('"expires_min" must be 1 to 1440 minutes');
  return v * 60_000;
}

function summaryLine(s: InviteSummary): IpcMessage {
  return { id: s.id, role: s.role, name: s.name, stage: s.stage, code: s.code, expires_at: s.expiresAt, failure: s.failure };
}

export function eventLine(e: InviteEvent): IpcMessage {
  switch (e.type) {
    case 'code':
      return { event: 'code', code: e.code, expires_at: e.expiresAt };
    case 'progress':
      return { event: 'progress', stage: e.stage };
    case 'done':
      return { event: 'done', name: e.name };
    case 'failed':
      return { event: 'failed', code: e.code, error: e.message };
  }
}

/** What the connection gives the op: a way to write a line, to end, and to register a clean-up. */
export interface InviteConnection {
  write(message: IpcMessage): void;
  finish(): void;
  onClose(cleanup: () => void): void;
}

/**
 * Serves one invite op.
 * @throws {BackchannelError} for a bad request (answered as an error by the daemon).
 */
export function serveInviteOp(invites: InviteManager | undefined, request: IpcMessage, conn: InviteConnection): void {
  if (invites === undefined) throw ipcError('this client runs without invites');
  const op = request['op'];
  switch (op) {
    case 'invites':
      only(request, ['op']);
      conn.write({ ok: true, invites: invites.list().map(summaryLine) });
      conn.finish();
      return;
    case 'invite_cancel': {
      only(request, ['op', 'id']);
      const id = request['id'];
      if (typeof id !== 'string') throw ipcError('"id" must be an invite id');
      invites.cancel(id);
      conn.write({ ok: true });
      conn.finish();
      return;
    }
    case 'invite':
    case 'accept': {
      only(request, op === 'invite' ? ['op', 'name', 'expires_min'] : ['op', 'code', 'name', 'expires_min']);
      const name = optionalName(request);
      const ms = lifetime(request);
      // Subscribe first: an invite may move on before the call returns.
      let id: string | null = null;
      const early: [string, InviteEvent][] = [];
      const onEvent = (from: string, e: InviteEvent): void => {
        if (id === null) {
          early.push([from, e]);
          return;
        }
        if (from !== id) return;
        conn.write(eventLine(e));
        if (e.type === 'done' || e.type === 'failed') {
          unsubscribe();
          conn.finish();
        }
      };
      const unsubscribe = invites.subscribe(onEvent);
      conn.onClose(unsubscribe);
      let summary: InviteSummary;
      try {
        if (op === 'invite') {
          summary = invites.invite({ ...(name === undefined ? {} : { name }), ...(ms === undefined ? {} : { lifetimeMs: ms }) });
        } else {
          const code = request['code'];
          if (typeof code !== 'string' || code.length > 200) throw ipcError('"code" must be the code you were given');
          if (name === undefined) throw ipcError('"name" is required: the name you give this contact');
          summary = invites.accept({ code, name, ...(ms === undefined ? {} : { lifetimeMs: ms }) });
        }
      } catch (e) {
        unsubscribe();
        throw e;
      }
      id = summary.id;
      conn.write({ ok: true, id: summary.id });
      for (const [from, e] of early.splice(0)) onEvent(from, e);
      return;
    }
    default:
      throw ipcError('unknown invite op');
  }
}

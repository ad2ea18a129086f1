/** The browser's link entry: the link core and the platform WebSocket, no `node:` imports. */
export { Link, LINK_PROTOCOL, LINK_PROLOGUE, MAX_FRAME_LENGTH, MAX_LINK_MESSAGE, CloseReason } from './link.js';
export type { CloseReasonCode, InitiatorOptions, LinkCloseInfo, LinkOptions, LinkStats, ResponderOptions } from './link.js';
export type { ByteTransport, TransportHandlers } from './transport.js';
export { BrowserWsTransport, connectBrowserWs } from './ws-browser.js';
export type { BrowserWsConnectOptions } from './ws-browser.js';

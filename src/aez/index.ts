/**
 * AEZ v5 (wide-block cipher and authenticated encryption), and the SPRP Sphinx uses for payloads.
 * @module
 */
export {
  AEZ_MAX_TAU,
  aezDecrypt,
  aezEncrypt,
  aezExtract,
  aezHash,
  aezPrf,
  sprpDecrypt,
  sprpDecryptInPlace,
  sprpEncrypt,
  sprpEncryptInPlace,
} from './aez.js';

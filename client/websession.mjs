// websession.mjs -- the ES module face of websession.js:
//   import WebSession from './websession.mjs';
// websession.js is a classic script that sets globalThis.WebSession.
import './websession.js';

export const WebSession = globalThis.WebSession;
export default WebSession;

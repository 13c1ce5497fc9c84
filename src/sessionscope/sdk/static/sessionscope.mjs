/*! sessionscope browser SDK as an ES module: import Sessionscope, {trackVideo, trackPages} from
 * "https://ANALYTICS/sdk/sessionscope.mjs". Events go to the server this file came from unless
 * an `endpoint` is given. */
import "./sessionscope.js";

const S = globalThis.Sessionscope;
const here = new URL(import.meta.url).origin;
const at = (o) => Object.assign({ endpoint: here }, o);

export const version = S.version;
export const trackVideo = (media, o) => S.trackVideo(media, at(o));
export const trackPages = (o) => S.trackPages(at(o));
export const flush = () => S.flush();
export default { version, trackVideo, trackPages, flush };

import { createHash } from "node:crypto";

/**
 * The console's stylesheet, shipped in the package and served by Fence under a name that carries
 * its hash, so browsers may cache it for a year and a new release is fetched at once. No asset
 * comes from another origin, and there is no inline style or script (the Content-Security-Policy
 * forbids both).
 */
const CSS = `
:root { color-scheme: light dark; --fg: #1b1f24; --muted: #5b6470; --line: #d8dde3; --accent: #2156c9; --bg: #fff; --warn: #a4262c; }
@media (prefers-color-scheme: dark) { :root { --fg: #e6e9ee; --muted: #9aa4b1; --line: #39414b; --accent: #7aa2ff; --bg: #14171b; --warn: #ff8a8f; } }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.5 system-ui, sans-serif; color: var(--fg); background: var(--bg); }
header { display: flex; flex-wrap: wrap; gap: .75rem 1.5rem; align-items: center; padding: .75rem 1rem; border-bottom: 1px solid var(--line); }
header nav { display: flex; flex-wrap: wrap; gap: 1rem; }
header form { margin-left: auto; }
main { max-width: 60rem; margin: 0 auto; padding: 1rem; }
a { color: var(--accent); }
a:focus, button:focus, input:focus { outline: 2px solid var(--accent); outline-offset: 2px; }
table { width: 100%; border-collapse: collapse; }
th, td { text-align: left; padding: .4rem .5rem; border-bottom: 1px solid var(--line); vertical-align: top; overflow-wrap: anywhere; }
.muted { color: var(--muted); }
.error { color: var(--warn); border: 1px solid var(--warn); padding: .5rem .75rem; border-radius: 4px; }
label { display: block; margin: .5rem 0 .25rem; }
input[type=password], input[type=text] { width: 100%; max-width: 32rem; padding: .5rem; font: inherit; }
button { font: inherit; padding: .4rem .9rem; cursor: pointer; }
`;

export const STYLESHEET = { body: CSS, path: `/console/assets/console.${createHash("sha256").update(CSS).digest("hex").slice(0, 12)}.css` };

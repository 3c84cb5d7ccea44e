// A worker starts outside any TypeScript loader: attacker-thread.ts is loaded through tsx.
import { tsImport } from "tsx/esm/api";

await tsImport("./attacker-thread.ts", import.meta.url);

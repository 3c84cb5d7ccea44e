#!/usr/bin/env node
// Runs the TypeScript CLI through tsx, which Fence already depends on to start.
import { register } from "tsx/esm/api";

register();
await import("../src/cli.ts");

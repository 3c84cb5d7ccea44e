/** Plain-text tables for the benchmark report (stdout); progress goes to stderr so stdout stays clean. */
export type Cell = string | number;

export function printTable(title: string, headers: readonly string[], rows: readonly (readonly Cell[])[], notes: readonly string[] = []): void {
  const text = rows.map((row) => row.map((cell) => (typeof cell === "number" ? formatNumber(cell) : cell)));
  const widths = headers.map((h, i) => Math.max(h.length, ...text.map((row) => (row[i] ?? "").length)));
  const line = (cells: readonly string[]) =>
    cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join("  ");
  const out = [
    "",
    title,
    "=".repeat(title.length),
    line(headers),
    widths.map((w) => "-".repeat(w)).join("  "),
    ...text.map(line),
    ...notes.map((n) => `  ${n}`),
  ];
  process.stdout.write(`${out.join("\n")}\n`);
}

export function formatNumber(value: number): string {
  if (!Number.isFinite(value)) return "n/a";
  if (Number.isInteger(value)) return value.toLocaleString("en-US");
  if (Math.abs(value) >= 100) return value.toFixed(0);
  if (Math.abs(value) >= 10) return value.toFixed(1);
  return value.toFixed(2);
}

export function ms(value: number): string {
  return Number.isFinite(value) ? value.toFixed(value >= 100 ? 0 : 2) : "n/a";
}

export function ratio(value: number): string {
  return Number.isFinite(value) ? `${value.toFixed(3)}x` : "n/a";
}

export function progress(message: string): void {
  process.stderr.write(`[bench] ${message}\n`);
}

/**
 * Runs a benchmark's `main` as the process's entry point. Everything should be closed when it
 * returns, so the process ends by itself; should a handle be left open anyway, the bench says
 * which and fails instead of hanging CI. A failure is printed and exits 1.
 */
export function runBenchmark(name: string, main: () => Promise<void>): void {
  main().then(
    () => {
      setTimeout(() => {
        process.stderr.write(`${name}: still running 10 s after the report; open: ${process.getActiveResourcesInfo().join(", ")}\n`, () =>
          process.exit(1),
        );
      }, 10_000).unref();
    },
    (error: unknown) => {
      process.stderr.write(`${name} failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`, () => process.exit(1));
    },
  );
}

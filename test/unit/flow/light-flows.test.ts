import { describe, expect, it } from "vitest";
import { LightFlows } from "../../../src/flow/light-flows.js";

/** Which tenants the reserved model threads may serve: those without a backlog, and not just after one. */
describe("LightFlows", () => {
  const setup = () => {
    let now = 1_000;
    const flows = new LightFlows({ maxOutstanding: 4, holdMs: 2_000 }, () => now);
    return { flows, advance: (ms: number) => (now += ms) };
  };

  it("a tenant with up to maxOutstanding items outstanding is light; one more makes it heavy", () => {
    const { flows } = setup();
    expect(flows.isLight("a")).toBe(true);
    flows.added("a", 4);
    expect(flows.isLight("a")).toBe(true);
    flows.added("a", 1);
    expect(flows.isLight("a")).toBe(false);
    // Another tenant is judged on its own backlog.
    flows.added("b", 2);
    expect(flows.isLight("b")).toBe(true);
  });

  it("a backlog that drains stays heavy for holdMs after it fell back within bounds, then is light again", () => {
    const { flows, advance } = setup();
    flows.added("a", 6);
    advance(5_000);
    flows.finished("a"); // 5 left: still a backlog
    flows.finished("a"); // 4 left: within bounds from now on
    expect(flows.isLight("a")).toBe(false);
    advance(1_999);
    expect(flows.isLight("a")).toBe(false);
    advance(1);
    expect(flows.isLight("a")).toBe(true);
  });

  it("a tenant that drains to nothing between two documents does not slip in during the hold", () => {
    const { flows, advance } = setup();
    flows.added("a", 8);
    for (let i = 0; i < 8; i++) flows.finished("a");
    advance(100);
    flows.added("a", 1); // the next document's first chunk, an instant later
    expect(flows.isLight("a")).toBe(false);
  });

  it("finishing more than was added never makes a negative count (a later small request is still light)", () => {
    const { flows } = setup();
    flows.finished("a");
    flows.finished("a");
    flows.added("a", 4);
    expect(flows.isLight("a")).toBe(true);
    flows.added("a", 1);
    expect(flows.isLight("a")).toBe(false);
  });
});

import assert from "node:assert/strict";
import { it } from "node:test";
import { keepOtherSections } from "../../src/bench/grid.js";

it("the bench grid rewrites only its own part of BENCHMARKS.md", () => {
  const existing = "# Benchmarks\nold table\n\n## How measured\nold\n\n## Serving\nS\n\n## Training\nT\n";
  const out = keepOtherSections(existing, "# Benchmarks\nnew table\n\n## How measured\nnew\n");
  assert.equal(out, "# Benchmarks\nnew table\n\n## How measured\nnew\n\n## Serving\nS\n\n## Training\nT\n");
  assert.equal(keepOtherSections("", "# B\n"), "# B\n");
});

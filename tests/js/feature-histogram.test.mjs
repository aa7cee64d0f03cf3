import assert from "node:assert/strict";
import { test } from "node:test";

import { chartBins, countTicks } from "../../frontend/static/pages/feature-histogram.js";

test("chartBins gives the open-ended bins of the builder a width on the log axis", () => {
  const bins = chartBins([
    { low: null, high: 0.01, count: 2, range: "0 – 0.01" },
    { low: 0.01, high: 0.1, count: 5 },
    { low: 0.1, high: 1, count: 0 },
    { low: 1, high: null, count: 1 },
  ]);
  assert.deepEqual(bins.map((b) => [b.low, b.high, b.count]), [[0.001, 0.01, 2], [0.01, 0.1, 5], [0.1, 1, 0], [1, 10, 1]]);
  assert.equal(bins[0].range, "0 – 0.01");
});

test("chartBins numbers the bins of a histogram without edges", () => {
  const bins = chartBins([{ count: 3, range: "bin 1" }, { count: 4, range: "bin 2" }]);
  assert.deepEqual(bins.map((b) => [b.low, b.high, b.count]), [[1, 2, 3], [2, 3, 4]]);
});

test("countTicks are 1-2-5 steps, or powers of ten for large counts", () => {
  assert.deepEqual(countTicks(1), [1]);
  assert.deepEqual(countTicks(60), [1, 2, 5, 10, 20, 50]);
  assert.deepEqual(countTicks(12_000), [1, 10, 100, 1000, 10_000]);
});

import assert from "node:assert/strict";
import { test } from "node:test";

import {
  boxesOverlap, elide, overlappingPairs, placeRowLabels, separateBoxes, wrapLabel,
} from "../../frontend/static/viewer/label-layout.js";
import { seeded } from "./helpers.mjs";

const measure = (text) => 6.5 * text.length; // a monospace stand-in for canvas measureText
const TIER = 15;
const asBoxes = (placed) => placed.map((p) => ({ x0: p.x0, x1: p.x1, y0: -p.tier * TIER, y1: -p.tier * TIER + 13 }));

test("labels with room stay whole, right above their points", () => {
  const items = [0, 1, 2].map((i) => ({ key: i, x: 100 + 200 * i, text: `"token ${i}" 12.5%` }));
  const placed = placeRowLabels(items, { left: 0, right: 800, measure });
  for (const [i, p] of placed.entries()) {
    assert.equal(p.text, items[i].text);
    assert.equal(p.tier, 0);
    assert.ok(Math.abs((p.x0 + p.x1) / 2 - items[i].x) < 1e-9);
  }
});

test("crowded labels are stacked and shortened, never overlapping, always inside the bounds", () => {
  const random = seeded(3);
  for (let trial = 0; trial < 200; trial += 1) {
    const n = 1 + Math.floor(random() * 12);
    const right = 120 + random() * 1200;
    const items = Array.from({ length: n }, (_, i) => ({
      key: i, x: random() * right, text: `"${"x".repeat(1 + Math.floor(random() * 16))}" ${(random() * 100).toFixed(1)}%`,
    }));
    const placed = placeRowLabels(items, { left: 0, right, gap: 6, maxTiers: 3, measure });
    assert.equal(placed.length, n);
    assert.deepEqual(overlappingPairs(asBoxes(placed)), [], `trial ${trial}`);
    for (const p of placed) {
      assert.ok(p.x0 >= -1e-6 && p.x1 <= right + 1e-6, `trial ${trial}: ${p.x0}..${p.x1} in 0..${right}`);
      assert.ok(measure(p.text) <= p.x1 - p.x0 + 1e-6, "the text fits its box");
      assert.ok(p.tier >= 0 && p.tier < 3);
      if (p.text !== p.full) assert.ok(p.text.endsWith("…") || p.text === "");
    }
  }
});

test("ten outputs on a phone-wide row: three rows, nothing overlapping", () => {
  const items = Array.from({ length: 10 }, (_, i) => ({ key: i, x: 40 + 33 * i, text: `" basketball${i}" 61.1%` }));
  const placed = placeRowLabels(items, { left: 4, right: 386, gap: 8, maxTiers: 3, measure });
  assert.equal(new Set(placed.map((p) => p.tier)).size, 3);
  assert.deepEqual(overlappingPairs(asBoxes(placed)), []);
});

test("elide keeps the longest prefix that fits", () => {
  assert.equal(elide("basketball", 100, measure), "basketball");
  assert.equal(elide("basketball", 6.5 * 5, measure), "bask…");
  assert.equal(elide("basketball", 6.5, measure), "…");
  assert.equal(elide("basketball", 3, measure), "");
});

test("separateBoxes leaves no two boxes overlapping", () => {
  const random = seeded(9);
  for (let trial = 0; trial < 50; trial += 1) {
    const boxes = Array.from({ length: 2 + Math.floor(random() * 14) }, () => {
      const x = random() * 200;
      const y = random() * 120;
      return { x0: x, y0: y, x1: x + 20 + random() * 110, y1: y + 20 + random() * 30 };
    });
    const out = separateBoxes(boxes, { pad: 4 });
    assert.deepEqual(overlappingPairs(out), [], `trial ${trial}`);
    out.forEach((b, i) => {
      assert.ok(Math.abs(b.x1 - b.x0 - (boxes[i].x1 - boxes[i].x0)) < 1e-9, "sizes are kept");
    });
  }
  assert.equal(boxesOverlap({ x0: 0, y0: 0, x1: 10, y1: 10 }, { x0: 10, y0: 0, x1: 20, y1: 10 }), false);
});

test("wrapLabel wraps words into three lines and marks what it leaves out", () => {
  assert.deepEqual(wrapLabel("say Austin"), ["say Austin"]);
  assert.deepEqual(wrapLabel("capital cities / say a capital city name in Texas", { maxChars: 20 }),
    ["capital cities / say", "a capital city name", "in Texas"]);
  assert.deepEqual(wrapLabel("supercalifragilisticexpialidocious", { maxChars: 20 }), ["supercalifragilistic", "expialidocious"]);
  const long = wrapLabel("one two three four five six seven eight nine ten eleven twelve thirteen", { maxChars: 14 });
  assert.equal(long.length, 3);
  assert.ok(long[2].endsWith("…"));
  assert.ok(long.every((line) => line.length <= 14));
  const label = "a label that is clearly longer than twenty-two characters";
  assert.ok(wrapLabel(label, { maxChars: 22 }).join(" ").length > 22, "no cut at 22 characters");
});

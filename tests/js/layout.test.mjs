import assert from "node:assert/strict";
import { test } from "node:test";

import { computeVisible } from "../../frontend/static/viewer/filters.js";
import { MARGIN, computeLayout } from "../../frontend/static/viewer/layout.js";
import { baseState, smallModel } from "./helpers.mjs";

const model = smallModel();
const visible = computeVisible(model, baseState());
const layout = computeLayout(model, visible, 800, 600);
const at = (id) => ({ x: layout.x[model.idToIndex.get(id)], y: layout.y[model.idToIndex.get(id)] });

test("rows run from embeddings at the bottom to logits at the top", () => {
  assert.equal(layout.rowY.length, model.nRows);
  assert.equal(layout.rowY[0], 600 - MARGIN.bottom);
  assert.equal(layout.rowY[model.nRows - 1], MARGIN.top);
  assert.equal(layout.rowH, (600 - MARGIN.top - MARGIN.bottom) / (model.nRows - 1));
  assert.equal(at("E_2_0").y, layout.rowY[0]);
  assert.equal(at("5_25722_5").y, MARGIN.top);
  assert.ok(at("0_101_4").y > at("1_201_4").y && at("1_201_4").y > at("3_401_5").y);
});

test("positions go left to right and every visible node is inside the drawing area", () => {
  const xs = model.nodes.filter((n) => n.kind === "embedding").sort((a, b) => a.ctx - b.ctx).map((n) => at(n.id).x);
  assert.deepEqual(xs, [...xs].sort((a, b) => a - b));
  assert.equal(new Set(xs).size, xs.length);
  for (const node of model.nodes) {
    const { x, y } = at(node.id);
    if (!visible[node.index]) {
      assert.ok(Number.isNaN(x) && Number.isNaN(y), `${node.id} is hidden`);
      continue;
    }
    assert.ok(x >= MARGIN.left && x <= 800 - MARGIN.right, `${node.id} x=${x}`);
    assert.ok(y >= MARGIN.top - layout.rowH && y <= 600 - MARGIN.bottom + layout.rowH, `${node.id} y=${y}`);
  }
});

test("nodes sharing a cell are spread apart, the most influential first", () => {
  const a = at("3_401_5"); // influence 0.05
  const b = at("3_402_5"); // influence 0.6, same layer and position
  assert.ok(a.x < b.x);
  assert.equal(a.y, b.y);
  const column = layout.columns[5];
  assert.ok(a.x > column.x0 && b.x < column.x1);
});

test("the layout is deterministic and scales with the size", () => {
  const again = computeLayout(model, visible, 800, 600);
  assert.deepEqual([...again.x], [...layout.x]);
  const wide = computeLayout(model, visible, 1600, 600);
  assert.ok(wide.x[model.idToIndex.get("E_603_5")] > layout.x[model.idToIndex.get("E_603_5")]);
});

test("logits spread beyond their column so their labels fit above them, inside the area", () => {
  const logits = model.nodes.filter((n) => n.kind === "logit").map((n) => n.index);
  const tight = computeLayout(model, visible, 800, 600);
  const spread = computeLayout(model, visible, 800, 600, { logitSpacing: 150 });
  const gap = (l) => Math.abs(l.x[logits[1]] - l.x[logits[0]]);
  assert.ok(gap(tight) < 150);
  assert.ok(Math.abs(gap(spread) - 150) < 1e-3);
  for (const index of logits) assert.ok(spread.x[index] >= MARGIN.left && spread.x[index] <= 800 - MARGIN.right);
  // never wider than the drawing area allows
  const narrow = computeLayout(model, visible, 300, 600, { logitSpacing: 500 });
  assert.ok(gap(narrow) <= 300 - MARGIN.left - MARGIN.right);
  // other nodes do not move
  for (const node of model.nodes) if (node.kind !== "logit" && visible[node.index]) assert.equal(spread.x[node.index], tight.x[node.index]);
});

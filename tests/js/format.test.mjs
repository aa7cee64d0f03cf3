import assert from "node:assert/strict";
import { test } from "node:test";

import { quoteToken } from "../../frontend/static/viewer/draw.js";
import { fmt, kindName, nodeFacts, positionText } from "../../frontend/static/viewer/format.js";
import { smallModel } from "./helpers.mjs";

test("fmt gives three significant digits, exponents for tiny values, a dash for none", () => {
  assert.equal(fmt(0.123456), "0.123");
  assert.equal(fmt(9.5), "9.5");
  assert.equal(fmt(-2.34567), "-2.35");
  assert.equal(fmt(0.00012), "1.2e-4");
  assert.equal(fmt(0), "0");
  assert.equal(fmt(1234.5), "1235");
  assert.equal(fmt(null), "—");
  assert.equal(fmt(Number.NaN), "—");
  assert.equal(fmt(1 / 3, 2), "0.33");
});

test("quoteToken keeps spaces visible and shortens long tokens", () => {
  assert.equal(quoteToken(" Austin"), '" Austin"');
  assert.equal(quoteToken("a\nb"), '"a\\nb"');
  assert.equal(quoteToken("abcdefghijklmnopqrstuvwxyz", 5), '"abcd…"');
});

test("nodeFacts describes a node the way the tooltip shows it", () => {
  const model = smallModel();
  const node = (id) => model.nodes[model.idToIndex.get(id)];
  assert.deepEqual(nodeFacts(model, node("3_401_5")), [
    ["Type", "Feature"], ["Layer", "L3"], ["Position", '5 " is"'], ["Feature", "401"],
    ["Activation", "9.5"], ["Influence", "0.05"],
  ]);
  assert.deepEqual(nodeFacts(model, node("5_25722_5")).slice(0, 4), [
    ["Type", "Logit"], ["Layer", "Lgt"], ["Position", '5 " Austin"'], ["Probability", "61.2%"], // its output token
  ]);
  assert.equal(positionText(node("E_2_0")), '0 "<bos>"');
  assert.equal(kindName("error"), "Error");
  assert.equal(kindName("other"), "other");
});
